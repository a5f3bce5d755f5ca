//! Reading a node's `GET /metrics` (OpenMetrics text): its samples, their names, and
//! the sum of one metric over its series — for benchmarks and tests, which compare
//! figures rather than parse them fully.

use std::collections::BTreeSet;

/// One sample line: `name{labels} value`.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample<'a> {
    /// The sample's name (`_total`, `_bucket`… included).
    pub name: &'a str,
    /// What is between the braces (empty without labels).
    pub labels: &'a str,
    /// The value.
    pub value: f64,
}

/// Every sample of `text` (comments and lines that do not parse are skipped).
pub fn samples(text: &str) -> Vec<Sample<'_>> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|line| {
            let (head, value) = match line.find('{') {
                Some(open) => {
                    let close = line.rfind('}')?;
                    let value = line.get(close + 1..)?;
                    let labels = line.get(open + 1..close)?;
                    ((line.get(..open)?, labels), value)
                }
                None => {
                    let (name, value) = line.split_once(' ')?;
                    ((name, ""), value)
                }
            };
            // A timestamp may follow the value.
            let value = value.split_whitespace().next()?.parse().ok()?;
            Some(Sample {
                name: head.0,
                labels: head.1,
                value,
            })
        })
        .collect()
}

/// The names of every sample in `text`.
pub fn names(text: &str) -> BTreeSet<String> {
    samples(text).iter().map(|s| s.name.to_string()).collect()
}

/// The sum of `name` over all its series, `None` when it has none.
pub fn sum(text: &str, name: &str) -> Option<f64> {
    let mut found = samples(text)
        .into_iter()
        .filter(|s| s.name == name)
        .peekable();
    found.peek()?;
    Some(found.map(|s| s.value).sum())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "# HELP distpos_missed_slots Slots missed.\n\
        # TYPE distpos_missed_slots counter\n\
        distpos_missed_slots_total{chain=\"a\",producer=\"0x1\"} 2\n\
        distpos_missed_slots_total{chain=\"a\",producer=\"0x2\"} 3\n\
        distpos_head_height 17\n\
        distpos_light_client_lag_seconds{chain=\"a\",peer=\"b\"} 1.5\n\
        # EOF\n";

    #[test]
    fn samples_with_and_without_labels_are_read_and_summed() {
        assert_eq!(sum(TEXT, "distpos_missed_slots_total"), Some(5.0));
        assert_eq!(sum(TEXT, "distpos_head_height"), Some(17.0));
        assert_eq!(sum(TEXT, "distpos_light_client_lag_seconds"), Some(1.5));
        assert_eq!(
            sum(TEXT, "distpos_missed_slots"),
            None,
            "a family is no sample"
        );
        assert_eq!(
            names(TEXT).into_iter().collect::<Vec<_>>(),
            [
                "distpos_head_height",
                "distpos_light_client_lag_seconds",
                "distpos_missed_slots_total"
            ]
        );
    }
}
