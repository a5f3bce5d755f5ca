//! The console's output: aligned tables, `key  value` blocks, and times an operator
//! reads at a glance ("3.2 s ago", "1 h 5 min", "0x472f70…0a8b"). Plain text, no
//! colours, no crate: widths are counted in characters.

/// A table: a header row and rows of cells, columns two spaces apart, each as wide as
/// its widest cell; the last column is not padded.
pub(crate) struct Table {
    head: Vec<&'static str>,
    right: Vec<bool>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column titles.
    pub(crate) fn new(head: &[&'static str]) -> Self {
        Self {
            head: head.to_vec(),
            right: vec![false; head.len()],
            rows: Vec::new(),
        }
    }

    /// Aligns columns `cols` (numbers) to the right.
    pub(crate) fn right(mut self, cols: &[usize]) -> Self {
        for &c in cols {
            if let Some(r) = self.right.get_mut(c) {
                *r = true;
            }
        }
        self
    }

    /// Adds a row; missing cells are empty, extra ones are dropped.
    pub(crate) fn row(&mut self, mut cells: Vec<String>) {
        cells.resize(self.head.len(), String::new());
        self.rows.push(cells);
    }

    /// True without rows.
    pub(crate) fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The table as lines of text, ending with a newline.
    pub(crate) fn render(&self) -> String {
        let width = |s: &str| s.chars().count();
        let mut widths: Vec<usize> = self.head.iter().map(|h| width(h)).collect();
        for row in &self.rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(width(cell));
            }
        }
        let last = self.head.len().saturating_sub(1);
        let line = |cells: &mut dyn Iterator<Item = &str>| {
            let mut out = String::new();
            for (i, cell) in cells.enumerate() {
                let pad = widths[i].saturating_sub(width(cell));
                if i > 0 {
                    out.push_str("  ");
                }
                if self.right[i] {
                    out.extend(std::iter::repeat_n(' ', pad));
                    out.push_str(cell);
                } else {
                    out.push_str(cell);
                    if i < last {
                        out.extend(std::iter::repeat_n(' ', pad));
                    }
                }
            }
            out.truncate(out.trim_end().len());
            out.push('\n');
            out
        };
        let mut out = line(&mut self.head.iter().copied());
        for row in &self.rows {
            out.push_str(&line(&mut row.iter().map(String::as_str)));
        }
        out
    }
}

/// `key  value` lines, the values aligned.
pub(crate) fn fields(pairs: &[(&str, String)]) -> String {
    let w = pairs
        .iter()
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for (k, v) in pairs {
        let pad = w - k.chars().count();
        out.push_str(k);
        out.extend(std::iter::repeat_n(' ', pad + 2));
        out.push_str(v);
        out.truncate(out.trim_end().len());
        out.push('\n');
    }
    out
}

/// A length of time as people say it: "250 ms", "3.2 s", "42 s", "5 min 3 s",
/// "1 h 5 min", "2 d 3 h".
pub(crate) fn duration(ms: u64) -> String {
    const S: u64 = 1_000;
    const MIN: u64 = 60 * S;
    const H: u64 = 60 * MIN;
    const D: u64 = 24 * H;
    let two = |a: u64, ua: &str, b: u64, ub: &str| {
        if b == 0 {
            format!("{a} {ua}")
        } else {
            format!("{a} {ua} {b} {ub}")
        }
    };
    match ms {
        ms if ms < S => format!("{ms} ms"),
        ms if ms < 10 * S => format!("{}.{} s", ms / S, ms % S / 100),
        ms if ms < MIN => format!("{} s", ms / S),
        ms if ms < H => two(ms / MIN, "min", ms % MIN / S, "s"),
        ms if ms < D => two(ms / H, "h", ms % H / MIN, "min"),
        ms => two(ms / D, "d", ms % D / H, "h"),
    }
}

/// How long ago `t_ms` was at `now_ms`: "3.2 s ago" ("in 1 s" for a time ahead of
/// this machine's clock).
pub(crate) fn ago(t_ms: u64, now_ms: u64) -> String {
    if t_ms <= now_ms {
        format!("{} ago", duration(now_ms - t_ms))
    } else {
        format!("in {}", duration(t_ms - now_ms))
    }
}

/// How long until `t_ms`: "in 3 s", or "now" once it has passed.
pub(crate) fn until(t_ms: u64, now_ms: u64) -> String {
    if t_ms > now_ms {
        format!("in {}", duration(t_ms - now_ms))
    } else {
        "now".into()
    }
}

/// A long hex string (hash, key) cut to its ends: `0x472f70…0a8b`.
pub(crate) fn short(hex: &str) -> String {
    let n = hex.chars().count();
    if n <= 16 {
        return hex.to_string();
    }
    let head: String = hex.chars().take(8).collect();
    let tail: String = hex.chars().skip(n - 4).collect();
    format!("{head}…{tail}")
}

/// `s` cut to `max` characters, with `…` when cut.
pub(crate) fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_people_say_them() {
        for (ms, want) in [
            (0, "0 ms"),
            (250, "250 ms"),
            (999, "999 ms"),
            (1_000, "1.0 s"),
            (3_249, "3.2 s"),
            (9_999, "9.9 s"),
            (10_000, "10 s"),
            (42_700, "42 s"),
            (60_000, "1 min"),
            (303_000, "5 min 3 s"),
            (3_600_000, "1 h"),
            (3_900_000, "1 h 5 min"),
            (86_400_000, "1 d"),
            (2 * 86_400_000 + 3 * 3_600_000 + 59_000, "2 d 3 h"),
            (u64::MAX, "213503982334 d 14 h"),
        ] {
            assert_eq!(duration(ms), want, "{ms} ms");
        }
    }

    #[test]
    fn times_are_relative_to_now() {
        assert_eq!(ago(1_000, 4_200), "3.2 s ago");
        assert_eq!(ago(5_000, 4_000), "in 1.0 s");
        assert_eq!(ago(0, u64::MAX), "213503982334 d 14 h ago");
        assert_eq!(until(7_000, 4_000), "in 3.0 s");
        assert_eq!(until(4_000, 4_000), "now");
        assert_eq!(until(0, 4_000), "now");
    }

    #[test]
    fn tables_align_their_columns() {
        let mut t = Table::new(&["CHAIN", "STATUS", "AVAILABLE"]).right(&[2, 7]);
        assert!(t.is_empty());
        t.row(vec!["d157".into(), "ok".into(), "100000".into()]);
        t.row(vec!["e2e4".into(), "stalled".into()]);
        t.row(vec!["b".into(), "—".into(), "5".into(), "dropped".into()]);
        assert_eq!(
            t.render(),
            "CHAIN  STATUS   AVAILABLE\n\
             d157   ok          100000\n\
             e2e4   stalled\n\
             b      —                5\n"
        );
    }

    #[test]
    fn fields_align_their_values() {
        assert_eq!(
            fields(&[
                ("head", "62".into()),
                ("participation", "100%".into()),
                ("x", String::new())
            ]),
            "head           62\nparticipation  100%\nx\n"
        );
    }

    #[test]
    fn long_strings_are_cut() {
        assert_eq!(
            short("0x472f70136cd4994ffaa62d00c75a499b53f08e09e18487502e4a7cbb1acb0a8b"),
            "0x472f70…0a8b"
        );
        assert_eq!(short("e2e4"), "e2e4");
        assert_eq!(clip("connection refused", 10), "connectio…");
        assert_eq!(clip("short", 10), "short");
        assert_eq!(clip("é", 0), "…");
    }
}
