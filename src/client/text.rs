//! Plain-text output for people: the tables the example clients and `sessiond`'s
//! operator commands print.

/// Rows under headers, each column padded to its widest cell (in characters), two
/// spaces apart; the last column is not padded. One string per line, header first.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> Vec<String> {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            out.push_str(cell);
            if i + 1 < cells.len() {
                let pad = w - cell.chars().count() + 2;
                out.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.trim_end().to_owned()
    };
    let mut out = vec![line(headers.to_vec())];
    out.extend(
        rows.iter()
            .map(|r| line(r.iter().map(String::as_str).collect())),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align_by_characters() {
        let rows = vec![
            vec!["xyz".to_owned(), "1".to_owned()],
            vec!["é".to_owned(), "22".to_owned()],
        ];
        assert_eq!(
            table(&["A", "LONGER"], &rows),
            ["A    LONGER", "xyz  1", "é    22"]
        );
    }
}
