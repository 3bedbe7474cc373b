//! AIS object-name templates: bash-style brace ranges, as `prefetch` and `evict` take them.
//!
//! `shard-{000..999}.tar` names 1,000 objects (`shard-000.tar` ...); a range may have a step
//! (`{0..100..10}`) and a template several ranges (`a-{0..1}-{00..02}`: the leftmost varies slowest). Zero
//! padding follows the range's written bounds: a bound written with a leading zero pads every number to the
//! wider bound. A template without braces is a prefix (AIS's rule), which [`Template::parse`] reports as such.

#[derive(Debug, Clone, PartialEq, Eq)]
struct Range {
    start: u64,
    end: u64,
    step: u64,
    width: usize,
}

/// A parsed template: literal pieces around ranges (`pieces.len() == ranges.len() + 1`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    pieces: Vec<String>,
    ranges: Vec<Range>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid template {template:?}: {reason}")]
pub struct TemplateError {
    template: String,
    reason: &'static str,
}

/// What a template string stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Names {
    Template(Template),
    /// No braces: every object whose name starts with this.
    Prefix(String),
}

/// The most names one template may stand for (a job of a hundred million objects is already days of work).
pub const MAX_NAMES: u64 = 100_000_000;

impl Template {
    pub fn parse(s: &str) -> Result<Names, TemplateError> {
        if !s.contains('{') && !s.contains('}') {
            return Ok(Names::Prefix(s.to_owned()));
        }
        let bad = |reason| TemplateError { template: s.to_owned(), reason };
        let mut pieces = Vec::new();
        let mut ranges = Vec::new();
        let mut rest = s;
        while let Some(open) = rest.find('{') {
            let close = rest[open..].find('}').ok_or_else(|| bad("unclosed '{'"))? + open;
            let literal = &rest[..open];
            if literal.contains('}') {
                return Err(bad("'}' without '{'"));
            }
            pieces.push(literal.to_owned());
            let parts: Vec<&str> = rest[open + 1..close].split("..").collect();
            let (a, b, step) = match parts.as_slice() {
                [a, b] => (*a, *b, "1"),
                [a, b, st] => (*a, *b, *st),
                _ => return Err(bad("a range is {start..end} or {start..end..step}")),
            };
            let num =
                |t: &str| t.parse::<u64>().map_err(|_| bad("range bounds and step must be non-negative integers"));
            let (start, end, step) = (num(a)?, num(b)?, num(step)?);
            if step == 0 {
                return Err(bad("the step must be at least 1"));
            }
            if start > end {
                return Err(bad("a range must not end before it starts"));
            }
            let padded = |t: &str| t.len() > 1 && t.starts_with('0');
            let width = if padded(a) || padded(b) { a.len().max(b.len()) } else { 0 };
            ranges.push(Range { start, end, step, width });
            rest = &rest[close + 1..];
        }
        if rest.contains('}') {
            return Err(bad("'}' without '{'"));
        }
        pieces.push(rest.to_owned());
        let count = ranges.iter().try_fold(1u64, |n, r| n.checked_mul(((r.end - r.start) / r.step).checked_add(1)?));
        if count.is_none_or(|n| n > MAX_NAMES) {
            return Err(bad("the template expands to more than 100,000,000 names"));
        }
        Ok(Names::Template(Template { pieces, ranges }))
    }

    /// The names, in order, without materializing them all.
    pub fn names(&self) -> impl Iterator<Item = String> + Send + '_ {
        let mut current: Vec<u64> = self.ranges.iter().map(|r| r.start).collect();
        let mut done = false;
        std::iter::from_fn(move || {
            if done {
                return None;
            }
            let mut name = String::new();
            for (i, r) in self.ranges.iter().enumerate() {
                name.push_str(&self.pieces[i]);
                name.push_str(&format!("{:0width$}", current[i], width = r.width));
            }
            name.push_str(&self.pieces[self.ranges.len()]);
            // Advance like an odometer, rightmost range fastest.
            done = true;
            for i in (0..self.ranges.len()).rev() {
                let r = &self.ranges[i];
                if current[i] + r.step <= r.end {
                    current[i] += r.step;
                    done = false;
                    break;
                }
                current[i] = r.start;
            }
            Some(name)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(s: &str) -> Vec<String> {
        match Template::parse(s).unwrap() {
            Names::Template(t) => t.names().collect(),
            Names::Prefix(p) => panic!("prefix {p}"),
        }
    }

    #[test]
    fn ranges_padding_steps_and_products() {
        assert_eq!(names("shard-{000..002}.tar"), ["shard-000.tar", "shard-001.tar", "shard-002.tar"]);
        assert_eq!(names("x-{8..11}"), ["x-8", "x-9", "x-10", "x-11"]);
        assert_eq!(names("{0..10..5}"), ["0", "5", "10"]);
        assert_eq!(names("a-{0..1}-{00..02}"), ["a-0-00", "a-0-01", "a-0-02", "a-1-00", "a-1-01", "a-1-02"]);
        assert_eq!(names("{1..1}"), ["1"]);
        let big = Template::parse("s-{0000..9999}").unwrap();
        let Names::Template(t) = big else { panic!() };
        assert_eq!(t.names().count(), 10_000);
        assert!(Template::parse("x-{0000000000..9999999999}-{0..99999}").is_err());
        assert!(Template::parse("x-{0..18446744073709551615}").is_err());
        assert_eq!(t.names().nth(9_999).as_deref(), Some("s-9999"));
    }

    #[test]
    fn prefixes_and_errors() {
        assert_eq!(Template::parse("dir/").unwrap(), Names::Prefix("dir/".into()));
        assert_eq!(Template::parse("").unwrap(), Names::Prefix(String::new()));
        for bad in ["{1..", "a}", "{a..b}", "{5..1}", "{0..10..0}", "{1}", "{1..2..3..4}", "x{0..1}}"] {
            assert!(Template::parse(bad).is_err(), "{bad}");
        }
    }

    proptest::proptest! {
        /// A template of up to three ranges names exactly the product of their lengths, each name once, in
        /// order, with the given padding.
        #[test]
        fn ranges_expand_to_their_product(
            ranges in proptest::collection::vec((0u64..50, 0u64..20, 1u64..4, proptest::bool::ANY), 1..4)
        ) {
            let mut tpl = String::from("p");
            let mut expected = 1usize;
            for (i, (start, len, step, pad)) in ranges.iter().enumerate() {
                let end = start + len;
                if *pad {
                    tpl.push_str(&format!("{{{start:03}..{end:03}..{step}}}-{i}"));
                } else {
                    tpl.push_str(&format!("{{{start}..{end}..{step}}}-{i}"));
                }
                expected *= (len / step + 1) as usize;
            }
            let got = names(&tpl);
            proptest::prop_assert_eq!(got.len(), expected);
            let distinct: std::collections::BTreeSet<_> = got.iter().collect();
            proptest::prop_assert_eq!(distinct.len(), expected);
        }

        #[test]
        fn parse_never_panics(s in proptest::collection::vec(
            proptest::prop_oneof![
                proptest::strategy::Just('{'), proptest::strategy::Just('}'), proptest::strategy::Just('.'),
                proptest::char::range('0', '9'), proptest::char::any()
            ],
            0..40,
        )) {
            let s: String = s.into_iter().collect();
            if let Ok(Names::Template(t)) = Template::parse(&s) {
                // Whatever parses is bounded, so counting its first names is safe.
                let _ = t.names().take(1000).count();
            }
        }
    }
}
