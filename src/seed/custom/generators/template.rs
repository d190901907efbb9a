//! Templates: `{column}`, `{column|slug}` (also `lower`, `upper`) and
//! `{row}` between literal text.

use super::{Filter, Part};

/// Parses a template: `{column}`, `{column|slug}` (also `lower`, `upper`), `{row}`.
pub(crate) fn parse_template(t: &str) -> Result<Vec<Part>, String> {
    let mut parts = Vec::new();
    let mut rest = t;
    while let Some(open) = rest.find('{') {
        if open > 0 {
            parts.push(Part::Lit(rest[..open].to_string()));
        }
        let close = rest[open..]
            .find('}')
            .ok_or_else(|| format!("template {t:?} has an unclosed '{{'"))?
            + open;
        let inner = &rest[open + 1..close];
        let (name, filter) = match inner.split_once('|') {
            Some((n, "slug")) => (n, Filter::Slug),
            Some((n, "lower")) => (n, Filter::Lower),
            Some((n, "upper")) => (n, Filter::Upper),
            Some((_, f)) => {
                return Err(format!(
                    "unknown template filter {f:?} (slug, lower, upper)"
                ));
            }
            None => (inner, Filter::None),
        };
        if name == "row" {
            parts.push(Part::Row);
        } else if name.is_empty() {
            return Err(format!("template {t:?} has an empty '{{}}'"));
        } else {
            parts.push(Part::Col {
                name: name.to_string(),
                filter,
            });
        }
        rest = &rest[close + 1..];
    }
    if !rest.is_empty() {
        parts.push(Part::Lit(rest.to_string()));
    }
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_parse() {
        let p = parse_template("{first_name|slug}.{last_name|slug}{row}@example.org").unwrap();
        assert_eq!(p.len(), 5);
        assert!(parse_template("{a|nope}").is_err());
        assert!(parse_template("{a").is_err());
    }
}
