//! The user table: accounts by id and by name, in memory.
//!
//! Owns lookups and the uniqueness of usernames. Does not persist anything: the `store`
//! module loads the table at startup and saves what changes.

use hashbrown::HashMap;

use super::attrs::{AttrLimit, Attributes};
use crate::auth::PasswordRecord;
use crate::protocol::Role;

/// One account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// The account's id (protocol.md `user_id`).
    pub id: u64,
    /// Unique, compared byte for byte.
    pub username: String,
    /// The password's PBKDF2 record.
    pub password: PasswordRecord,
    /// What the account may do (ordinary user or administrator).
    pub role: Role,
    /// May be empty (accounts made by the operator).
    pub email: String,
    /// Unix ms.
    pub created_ms: u64,
    /// Unix ms of the last successful login, 0 if none.
    pub last_login_ms: u64,
    /// Suspended by an administrator: logins fail with SUSPENDED.
    pub suspended: bool,
}

/// [`UserTable::create`] or [`UserTable::restore`] found the username (or, restoring,
/// the id) already in use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UsernameTaken;

/// Accounts by id, with a name index.
#[derive(Debug, Default)]
pub struct UserTable {
    by_id: HashMap<u64, User>,
    by_name: HashMap<String, u64>,
    next_id: u64,
    /// The profiles of the accounts that have one (protocol.md 5.44).
    profiles: HashMap<u64, Attributes>,
    /// The application roles of the accounts that have one (5.48).
    app_roles: HashMap<u64, String>,
}

impl UserTable {
    /// An empty table; the first account created gets id 1.
    pub fn new() -> Self {
        UserTable {
            by_id: HashMap::new(),
            by_name: HashMap::new(),
            next_id: 1,
            profiles: HashMap::new(),
            app_roles: HashMap::new(),
        }
    }

    /// Adds a user that already has an id (loading from the store, and `create_as`).
    pub fn restore(&mut self, user: User) -> Result<(), UsernameTaken> {
        if self.by_name.contains_key(&user.username) || self.by_id.contains_key(&user.id) {
            return Err(UsernameTaken);
        }
        self.next_id = self.next_id.max(user.id + 1);
        self.by_name.insert(user.username.clone(), user.id);
        self.by_id.insert(user.id, user);
        Ok(())
    }

    /// Creates a user with the next free id.
    pub fn create(
        &mut self,
        username: &str,
        password: PasswordRecord,
        role: Role,
        email: &str,
        created_ms: u64,
    ) -> Result<&User, UsernameTaken> {
        self.create_as(self.next_id, username, password, role, email, created_ms)
    }

    /// Creates a user with the id `id` (given out by a store shared with other servers).
    pub fn create_as(
        &mut self,
        id: u64,
        username: &str,
        password: PasswordRecord,
        role: Role,
        email: &str,
        created_ms: u64,
    ) -> Result<&User, UsernameTaken> {
        self.restore(User {
            id,
            username: username.to_owned(),
            password,
            role,
            email: email.to_owned(),
            created_ms,
            last_login_ms: 0,
            suspended: false,
        })?;
        Ok(&self.by_id[&id])
    }

    /// Removes a user by name (an account whose creation could not be stored, or one
    /// deleted): the name is free again; its id is not given out again by this table.
    pub fn remove(&mut self, username: &str) -> Option<User> {
        let id = self.by_name.remove(username)?;
        self.profiles.remove(&id);
        self.app_roles.remove(&id);
        self.by_id.remove(&id)
    }

    /// An account's profile (None: it has none).
    pub fn profile(&self, id: u64) -> Option<&Attributes> {
        self.profiles.get(&id)
    }

    /// Sets (`Some`) or removes (`None`) an attribute of account `id`'s profile: whether
    /// it changed, or the bound it would pass (nothing changed). False for no such
    /// account.
    pub fn set_profile(
        &mut self,
        id: u64,
        key: &str,
        value: Option<&[u8]>,
    ) -> Result<bool, AttrLimit> {
        if !self.by_id.contains_key(&id) {
            return Ok(false);
        }
        let mut p = self.profiles.remove(&id).unwrap_or_default();
        let r = match value {
            Some(v) => p.set(key, v).map(|()| true),
            None => Ok(p.remove(key)),
        };
        if !p.is_empty() {
            self.profiles.insert(id, p);
        }
        r
    }

    /// Every profile, by account.
    pub fn profiles(&self) -> impl Iterator<Item = (u64, &Attributes)> {
        self.profiles.iter().map(|(&id, p)| (id, p))
    }

    /// Every application role given, by account.
    pub fn app_roles(&self) -> impl Iterator<Item = (u64, &str)> {
        self.app_roles.iter().map(|(&id, r)| (id, r.as_str()))
    }

    /// An account's application role (None: it has none).
    pub fn app_role(&self, id: u64) -> Option<&str> {
        self.app_roles.get(&id).map(String::as_str)
    }

    /// Gives account `id` the application role `role` (empty: none); whether it changed.
    pub fn set_app_role(&mut self, id: u64, role: &str) -> bool {
        if !self.by_id.contains_key(&id) {
            return false;
        }
        let old = if role.is_empty() {
            self.app_roles.remove(&id)
        } else {
            self.app_roles.insert(id, role.to_owned())
        };
        old.as_deref() != Some(role).filter(|r| !r.is_empty())
    }

    /// The id the next account created gets, when that does not follow from the accounts
    /// held (one above the highest; 1 for none): accounts above were deleted. What a
    /// snapshot keeps so that ids stay unique ([`UserTable::reserve_ids_below`]).
    pub fn next_id_beyond_accounts(&self) -> Option<u64> {
        let implied = self.by_id.keys().max().map_or(1, |&m| m + 1);
        (self.next_id != implied).then_some(self.next_id)
    }

    /// Ids below `next` are not given out (they were, to accounts since deleted).
    pub fn reserve_ids_below(&mut self, next: u64) {
        self.next_id = self.next_id.max(next);
    }

    /// The account with id `id`.
    pub fn get(&self, id: u64) -> Option<&User> {
        self.by_id.get(&id)
    }

    /// The account with id `id`, to change (not its username: the name index would not
    /// follow).
    pub fn get_mut(&mut self, id: u64) -> Option<&mut User> {
        self.by_id.get_mut(&id)
    }

    /// The account named `username`, compared byte for byte.
    pub fn by_name(&self, username: &str) -> Option<&User> {
        self.by_name.get(username).and_then(|id| self.by_id.get(id))
    }

    /// Accounts held.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Whether there is no account.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// Every user, in id order (for saving).
    pub fn all(&self) -> Vec<&User> {
        let mut v: Vec<&User> = self.by_id.values().collect();
        v.sort_by_key(|u| u.id);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec() -> PasswordRecord {
        PasswordRecord::create(b"pw", 1).unwrap()
    }

    #[test]
    fn create_lookup_and_uniqueness() {
        let mut t = UserTable::new();
        let id = t.create("alice", rec(), Role::User, "", 5).unwrap().id;
        assert_eq!(id, 1);
        assert_eq!(t.by_name("alice").unwrap().id, 1);
        assert!(t.by_name("Alice").is_none(), "names compare byte for byte");
        assert_eq!(
            t.create("alice", rec(), Role::User, "", 6).unwrap_err(),
            UsernameTaken
        );
        assert_eq!(
            t.create("bob", rec(), Role::Admin, "b@x.y", 7).unwrap().id,
            2
        );
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn restore_keeps_ids_and_moves_the_counter() {
        let mut t = UserTable::new();
        let u = User {
            id: 41,
            username: "x".into(),
            password: rec(),
            role: Role::Admin,
            email: String::new(),
            created_ms: 1,
            last_login_ms: 2,
            suspended: false,
        };
        t.restore(u.clone()).unwrap();
        assert_eq!(t.restore(u).unwrap_err(), UsernameTaken);
        assert_eq!(t.create("y", rec(), Role::User, "", 3).unwrap().id, 42);
        assert_eq!(t.all().iter().map(|u| u.id).collect::<Vec<_>>(), [41, 42]);
    }

    #[test]
    fn a_removed_name_is_free_and_its_id_is_not_given_again() {
        let mut t = UserTable::new();
        t.create("a", rec(), Role::User, "", 1).unwrap();
        t.create("b", rec(), Role::User, "", 1).unwrap();
        assert_eq!(t.next_id_beyond_accounts(), None);
        assert_eq!(t.remove("b").unwrap().id, 2);
        assert_eq!(t.next_id_beyond_accounts(), Some(3));
        assert_eq!(t.create("b", rec(), Role::User, "", 2).unwrap().id, 3);
        // what a snapshot without the deleted account brings back
        let mut again = UserTable::new();
        again.restore(t.by_name("a").unwrap().clone()).unwrap();
        again.reserve_ids_below(4);
        assert_eq!(again.create("c", rec(), Role::User, "", 3).unwrap().id, 4);
    }
}
