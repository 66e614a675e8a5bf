//! The two tables the codec is generated from, in the manner of rustls's `enum_builder!`
//! and quinn's `frame_types!`: a wire enum's values and protocol.md names are written
//! once ([`wire_enum!`]), and so is the opcode table ([`messages!`]); every conversion is
//! generated from them. A new opcode is one line in `protocol/mod.rs` plus its codec file.

/// A wire enum from one table: `Variant = value => "NAME",` per line.
///
/// - `open enum`: a value this codec does not know decodes as `Other(v)` and encodes back
///   as `v` (protocol.md 8: a newer peer's codes and reasons pass through an older one).
///   `unknown "NAME"` is what `name()` says of such a value.
/// - `closed enum`: an unknown value is refused (`from_*` returns None: MALFORMED_FRAME
///   where a frame carries it, a damaged record in the journal). The variants carry their
///   values as discriminants, so `v as u8` works.
///
/// Both get `ALL` (the known values in table order), `to_*`/`from_*` (the method names are
/// part of the table's header), `name()` and `from_name()`.
macro_rules! wire_enum {
    (
        $(#[$meta:meta])*
        $vis:vis open enum $name:ident: $repr:ty, $to:ident, $from:ident, unknown $unknown:literal {
            $( $(#[$vmeta:meta])* $variant:ident = $value:literal => $text:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        $vis enum $name {
            $( $(#[$vmeta])* $variant, )+
            /// A value this codec does not know (a newer peer's), kept as it came.
            Other($repr),
        }

        impl $name {
            /// Every value this version defines, in protocol.md's order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The value on the wire.
            pub fn $to(self) -> $repr {
                match self {
                    $($name::$variant => $value,)+
                    $name::Other(v) => v,
                }
            }

            /// The variant for a value on the wire; an unknown one is kept as `Other`.
            pub fn $from(v: $repr) -> Self {
                match v {
                    $($value => $name::$variant,)+
                    other => $name::Other(other),
                }
            }

            /// The name protocol.md uses.
            pub fn name(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                    $name::Other(_) => $unknown,
                }
            }

            /// The known variant protocol.md calls `name`.
            pub fn from_name(name: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|v| v.name() == name)
            }
        }
    };
    (
        $(#[$meta:meta])*
        $vis:vis closed enum $name:ident: $repr:ty, $to:ident, $from:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $value:literal => $text:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr($repr)]
        $vis enum $name {
            $( $(#[$vmeta])* $variant = $value, )+
        }

        impl $name {
            /// Every value, in table order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The value on the wire (or in a record).
            pub fn $to(self) -> $repr {
                self as $repr
            }

            /// The variant for a value; None for one this version does not define.
            pub fn $from(v: $repr) -> Option<Self> {
                match v {
                    $($value => Some($name::$variant),)+
                    _ => None,
                }
            }

            /// The name protocol.md uses.
            pub fn name(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }

            /// The variant called `name`.
            pub fn from_name(name: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|v| v.name() == name)
            }
        }
    };
}

/// The opcode table: `code "NAME" Variant(PayloadType),` per message, with its doc. Makes
/// [`Opcode`](super::Opcode) (with `ALL`, `from_u8`, `name`), [`Message`](super::Message)
/// (one variant per opcode, holding its payload type) and the dispatch from one to the
/// other: `opcode()`, decoding, `encoded_len()` and encoding, each through the payload
/// type's own `decode`, `encoded_len` and `encode` in its family's file.
macro_rules! messages {
    ( $( $(#[$meta:meta])* $code:literal $text:literal $variant:ident($payload:ty), )+ ) => {
        /// The opcodes of version 1 (protocol.md section 5).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(u8)]
        pub enum Opcode {
            $( $(#[$meta])* $variant = $code, )+
        }

        impl Opcode {
            /// Every opcode, in table order.
            pub const ALL: &'static [Opcode] = &[$(Opcode::$variant),+];

            /// The opcode for a header's byte; None for one this version does not define.
            pub fn from_u8(v: u8) -> Option<Opcode> {
                match v {
                    $($code => Some(Opcode::$variant),)+
                    _ => None,
                }
            }

            /// The name protocol.md uses.
            pub fn name(self) -> &'static str {
                match self {
                    $(Opcode::$variant => $text,)+
                }
            }
        }

        /// Every message of version 1: one variant per opcode, holding its payload.
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub enum Message {
            $( $(#[$meta])* $variant($payload), )+
        }

        impl Message {
            /// The opcode this message travels under.
            pub fn opcode(&self) -> Opcode {
                match self {
                    $(Message::$variant(_) => Opcode::$variant,)+
                }
            }

            fn decode(opcode: Opcode, r: &mut Reader<'_>) -> Result<Message, DecodeErrorKind> {
                Ok(match opcode {
                    $(Opcode::$variant => Message::$variant(<$payload>::decode(r)?),)+
                })
            }

            /// Payload bytes (header excluded).
            pub fn encoded_len(&self) -> usize {
                match self {
                    $(Message::$variant(m) => m.encoded_len(),)+
                }
            }

            fn encode_payload<B: BufMut>(&self, dst: &mut B) {
                match self {
                    $(Message::$variant(m) => m.encode(dst),)+
                }
            }
        }
    };
}

pub(crate) use messages;
pub(crate) use wire_enum;
