//! The downward-API annotations file (`/etc/podinfo/annotations`): one
//! `key="value"` line per pod annotation, the value quoted the way Go's
//! strconv.Quote does. The plugin (with Kubernetes) publishes the
//! container data as `userspace/configuration-data` (a JSON array) and the
//! socket directory as `userspace/mapped-dir`.

use std::collections::BTreeMap;

use anyhow::{bail, Context, Result};

pub const CONFIGURATION_DATA: &str = "userspace/configuration-data";
pub const MAPPED_DIR: &str = "userspace/mapped-dir";

/// Parses the file's text into key -> value.
pub fn parse(text: &str) -> Result<BTreeMap<String, String>> {
    let mut map = BTreeMap::new();
    for (n, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let (key, quoted) = line
            .split_once('=')
            .with_context(|| format!("annotations line {}: no '='", n + 1))?;
        let value =
            unquote(quoted).with_context(|| format!("annotations line {}: {key}", n + 1))?;
        map.insert(key.to_string(), value);
    }
    Ok(map)
}

/// Undoes Go's strconv.Quote: `"..."` with \" \\ \n \t \r \a \b \f \v,
/// \xHH, \uHHHH and \UHHHHHHHH escapes.
fn unquote(quoted: &str) -> Result<String> {
    let Some(inner) = quoted.strip_prefix('"').and_then(|q| q.strip_suffix('"')) else {
        bail!("value is not a quoted string");
    };
    let mut out = String::with_capacity(inner.len());
    let mut bytes: Vec<u8> = Vec::new();
    let mut chars = inner.chars();
    let flush = |bytes: &mut Vec<u8>, out: &mut String| {
        if !bytes.is_empty() {
            out.push_str(&String::from_utf8_lossy(bytes));
            bytes.clear();
        }
    };
    while let Some(c) = chars.next() {
        if c != '\\' {
            flush(&mut bytes, &mut out);
            out.push(c);
            continue;
        }
        let escaped = chars.next().context("value ends in a lone backslash")?;
        let mut hex = |digits: usize| -> Result<u32> {
            let text: String = chars.by_ref().take(digits).collect();
            if text.len() != digits {
                bail!("short \\{escaped} escape");
            }
            u32::from_str_radix(&text, 16).with_context(|| format!("bad \\{escaped}{text}"))
        };
        match escaped {
            'x' => {
                // A raw byte: may be part of a multi-byte UTF-8 sequence.
                bytes.push(hex(2)? as u8);
                continue;
            }
            'u' | 'U' => {
                let code = hex(if escaped == 'u' { 4 } else { 8 })?;
                flush(&mut bytes, &mut out);
                out.push(
                    char::from_u32(code).with_context(|| format!("bad code point {code:#x}"))?,
                );
                continue;
            }
            _ => {}
        }
        flush(&mut bytes, &mut out);
        out.push(match escaped {
            '"' => '"',
            '\\' => '\\',
            '\'' => '\'',
            'n' => '\n',
            't' => '\t',
            'r' => '\r',
            'a' => '\u{7}',
            'b' => '\u{8}',
            'f' => '\u{c}',
            'v' => '\u{b}',
            other => bail!("unknown escape \\{other}"),
        });
    }
    flush(&mut bytes, &mut out);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubelet_lines_parse() {
        let text = concat!(
            "kubernetes.io/config.seen=\"2026-11-29T10:00:00Z\"\n",
            "userspace/configuration-data=\"[{\\\"containerId\\\":\\\"abc\\\",\\\"ifName\\\":\\\"net1\\\"}]\"\n",
            "userspace/mapped-dir=\"/var/lib/cni/usrspcni/\"\n",
            "note=\"tab\\there \\u00e9 \\xc3\\xa9 \\\\ end\"\n",
        );
        let map = parse(text).unwrap();
        assert_eq!(
            map[CONFIGURATION_DATA],
            r#"[{"containerId":"abc","ifName":"net1"}]"#
        );
        assert_eq!(map[MAPPED_DIR], "/var/lib/cni/usrspcni/");
        assert_eq!(map["note"], "tab\there é é \\ end");
    }

    #[test]
    fn malformed_lines_are_errors_not_panics() {
        for bad in [
            "novalue",
            "k=unquoted",
            "k=\"\\",
            "k=\"\\q\"",
            "k=\"\\u12\"",
            "k=\"\\UFFFFFFFF\"",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
