//! CSV: a header row whose first three columns are `name`, `timestamp`, `value` (in that order), the
//! others dimension keys; then one point per row. `timestamp` is Unix ms or RFC 3339; an empty cell
//! leaves that dimension out (a missing dimension reads as `""` anyway). Fields follow RFC 4180:
//! separated by commas, optionally in double quotes with `""` for a quote inside; a quoted field may not
//! span lines (one row is one line).

use std::borrow::Cow;

use super::{Decoded, Decoder as LineDecoder};
use crate::cli::points::{Timestamp, Unsendable, encode, finite};

/// The decoder: the header, once read.
#[derive(Default)]
pub struct Decoder {
    dimensions: Option<Vec<String>>,
}

/// The fields of one CSV line.
fn fields(line: &str) -> Result<Vec<Cow<'_, str>>, String> {
    let mut out = Vec::new();
    let mut rest = line;
    loop {
        if let Some(quoted) = rest.strip_prefix('"') {
            let mut value = String::new();
            let mut chars = quoted.char_indices();
            let after = loop {
                match chars.next() {
                    Some((i, '"')) => {
                        if quoted[i + 1..].starts_with('"') {
                            value.push('"');
                            chars.next();
                        } else {
                            break &quoted[i + 1..];
                        }
                    }
                    Some((_, c)) => value.push(c),
                    None => {
                        return Err(format!(
                            "field {} opens a quote that the line does not close",
                            out.len() + 1
                        ));
                    }
                }
            };
            out.push(Cow::Owned(value));
            match after.strip_prefix(',') {
                Some(next) => rest = next,
                None if after.is_empty() => return Ok(out),
                None => {
                    return Err(format!(
                        "field {} has text after its closing quote",
                        out.len()
                    ));
                }
            }
        } else {
            match rest.split_once(',') {
                Some((field, next)) => {
                    out.push(Cow::Borrowed(field));
                    rest = next;
                }
                None => {
                    out.push(Cow::Borrowed(rest));
                    return Ok(out);
                }
            }
        }
    }
}

impl LineDecoder for Decoder {
    fn line(&mut self, line: &str, out: &mut Vec<Result<String, Unsendable>>) -> Decoded {
        if line.trim().is_empty() {
            return Decoded::Points;
        }
        let fields = match fields(line) {
            Ok(fields) => fields,
            Err(e) => return Decoded::Bad(e),
        };
        let Some(dimensions) = &self.dimensions else {
            if fields.len() < 3 || fields[..3] != ["name", "timestamp", "value"] {
                return Decoded::Bad(
                    "the header row must start with name,timestamp,value (then dimension keys)"
                        .into(),
                );
            }
            self.dimensions = Some(fields[3..].iter().map(|f| f.to_string()).collect());
            return Decoded::Points;
        };
        if fields.len() != dimensions.len() + 3 {
            return Decoded::Bad(format!(
                "{} fields, but the header has {}",
                fields.len(),
                dimensions.len() + 3
            ));
        }
        let value = match fields[2].trim().parse::<f64>() {
            Ok(v) => v,
            Err(_) => return Decoded::Bad(format!("value {:?} is not a number", fields[2])),
        };
        let dims: Vec<(Cow<'_, str>, Cow<'_, str>)> = dimensions
            .iter()
            .zip(&fields[3..])
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| (Cow::Borrowed(k.as_str()), Cow::Borrowed(v.as_ref())))
            .collect();
        let timestamp = Timestamp::parse(fields[1].trim());
        out.push(finite(value).map(|v| encode(&fields[0], &timestamp, v, &dims)));
        Decoded::Points
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_follow_rfc_4180_on_one_line() {
        assert_eq!(
            fields("a,,\"b,c\",\"d\"\"e\"").unwrap(),
            vec!["a", "", "b,c", "d\"e"]
        );
        assert_eq!(fields("\"\"").unwrap(), vec![""]);
        assert!(fields("\"abc").unwrap_err().contains("does not close"));
        assert!(
            fields("\"a\"b,c")
                .unwrap_err()
                .contains("after its closing quote")
        );
    }

    fn quoted(field: &str) -> String {
        format!("\"{}\"", field.replace('"', "\"\""))
    }

    proptest::proptest! {
        #[test]
        fn any_line_splits_or_is_refused_without_panicking(line in "[a-z,\"\\\\ é]{0,40}") {
            let _ = fields(&line);
        }

        #[test]
        fn quoted_fields_split_back_to_themselves(values in proptest::collection::vec("[a-z,\" é]{0,8}", 1..6)) {
            let line: Vec<String> = values.iter().map(|v| quoted(v)).collect();
            let line = line.join(",");
            let split = fields(&line).unwrap();
            proptest::prop_assert_eq!(split, values.iter().map(|v| Cow::Borrowed(v.as_str())).collect::<Vec<_>>());
        }
    }

    #[test]
    fn rows_become_points_after_the_header() {
        let mut d = Decoder::default();
        let mut out = Vec::new();
        assert!(matches!(
            d.line("name,value,timestamp", &mut out),
            Decoded::Bad(_)
        ));
        assert!(matches!(
            d.line("name,timestamp,value,host,dc", &mut out),
            Decoded::Points
        ));
        assert!(matches!(
            d.line("cpu,1700000000000,0.5,a,", &mut out),
            Decoded::Points
        ));
        assert!(matches!(
            d.line("cpu,2026-01-01T00:00:00Z,1,\"b,c\",x", &mut out),
            Decoded::Points
        ));
        assert!(
            matches!(d.line("cpu,1,2", &mut out), Decoded::Bad(e) if e.contains("3 fields, but the header has 5"))
        );
        assert!(
            matches!(d.line("cpu,1,x,a,b", &mut out), Decoded::Bad(e) if e.contains("not a number"))
        );
        assert_eq!(
            out[0].as_deref().unwrap(),
            r#"{"name":"cpu","timestamp":1700000000000,"value":0.5,"dimensions":{"host":"a"}}"#
        );
        assert_eq!(
            out[1].as_deref().unwrap(),
            r#"{"name":"cpu","timestamp":"2026-01-01T00:00:00Z","value":1.0,"dimensions":{"host":"b,c","dc":"x"}}"#
        );
    }
}
