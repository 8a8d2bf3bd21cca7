//! Generates the VPP message codecs from `vpp-api/vpp-25.10-binapi.json`
//! (VPP 25.10's message definitions: names, CRCs, fields in wire order):
//! one struct per message and per type, with `encode` / `decode` in VPP's
//! wire format (big-endian, fixed strings NUL-padded, variable arrays
//! counted by an earlier field). Nothing here is typed per message.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::PathBuf;

use serde_json::Value;

const DEFINITIONS: &str = "vpp-api/vpp-25.10-binapi.json";
/// Wire types the definitions reference without defining.
const SUPPLEMENT: &str = "vpp-api/supplement.json";

/// How a field's type is represented and coded.
#[derive(Clone)]
enum Ty {
    /// u8..u64, i8..i64, f64, bool
    Base(&'static str),
    /// [u8; N] (aliases such as mac_address)
    Bytes(usize),
    /// A generated struct.
    Struct(String),
}

struct Gen {
    /// Type name -> representation (enums and aliases map to base types).
    types: HashMap<String, Ty>,
    out: String,
}

fn base(name: &str) -> Option<&'static str> {
    Some(match name {
        "u8" | "uint8" => "u8",
        "u16" | "uint16" => "u16",
        "u32" | "uint32" => "u32",
        "u64" | "uint64" => "u64",
        "i8" | "int8" => "i8",
        "i16" | "int16" => "i16",
        "i32" | "int32" => "i32",
        "i64" | "int64" => "i64",
        "f64" | "float64" => "f64",
        "bool" => "bool",
        _ => return None,
    })
}

fn camel(name: &str) -> String {
    name.split('_')
        .map(|part| {
            let mut c = part.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

fn field_name(name: &str) -> String {
    match name {
        "type" | "match" | "mod" | "ref" | "move" | "fn" | "impl" | "loop" | "where" | "use"
        | "in" => format!("r#{name}"),
        other => other.to_string(),
    }
}

/// A parsed field type: `t`, `t[N]`, `t[count]`, `string[N]`, `string[]`.
enum Shape {
    One(Ty),
    FixedString(usize),
    VarString,
    Fixed(Ty, usize),
    Counted(Ty, String),
}

impl Gen {
    fn ty(&self, name: &str) -> Option<Ty> {
        base(name)
            .map(Ty::Base)
            .or_else(|| self.types.get(name).cloned())
    }

    fn shape(&self, t: &str) -> Option<Shape> {
        let Some((inner, rest)) = t.split_once('[') else {
            return self.ty(t).map(Shape::One);
        };
        let len = rest.trim_end_matches(']');
        if inner == "string" {
            return Some(if len.is_empty() {
                Shape::VarString
            } else {
                Shape::FixedString(len.parse().ok()?)
            });
        }
        let ty = self.ty(inner)?;
        Some(match len.parse::<usize>() {
            Ok(n) => Shape::Fixed(ty, n),
            Err(_) => Shape::Counted(ty, len.to_string()),
        })
    }

    fn rust(ty: &Ty) -> String {
        match ty {
            Ty::Base(b) => b.to_string(),
            Ty::Bytes(n) => format!("[u8; {n}]"),
            Ty::Struct(s) => s.clone(),
        }
    }

    fn put(ty: &Ty, expr: &str) -> String {
        match ty {
            Ty::Base("bool") => format!("out.push({expr} as u8);"),
            Ty::Base(_) => format!("out.extend_from_slice(&{expr}.to_be_bytes());"),
            Ty::Bytes(_) => format!("out.extend_from_slice(&{expr});"),
            Ty::Struct(_) => format!("{expr}.put(out);"),
        }
    }

    fn get(ty: &Ty) -> String {
        match ty {
            Ty::Base(b) => format!("r.{b}()?"),
            Ty::Bytes(n) => format!("r.bytes::<{n}>()?"),
            Ty::Struct(s) => format!("{s}::get(r)?"),
        }
    }

    /// A struct with `put` / `get`; None when a field's type is unknown.
    fn record(&self, rust_name: &str, doc: &str, fields: &[Value]) -> Option<String> {
        let mut decl = String::new();
        let mut put = String::new();
        let mut get = String::new();
        let counts: HashMap<String, String> = fields
            .iter()
            .filter_map(|f| match self.shape(f["type"].as_str()?)? {
                Shape::Counted(_, count) => Some((count, f["name"].as_str()?.to_string())),
                _ => None,
            })
            .collect();
        let mut names = Vec::new();
        for f in fields {
            let name = field_name(f["name"].as_str()?);
            let shape = self.shape(f["type"].as_str()?)?;
            let (rust, p, g) = match &shape {
                Shape::One(ty) => {
                    // A count field is written from its array's length.
                    let p = match counts.get(f["name"].as_str()?) {
                        Some(array) => format!("out.extend_from_slice(&(self.{array}.len() as {}).to_be_bytes());", Self::rust(ty)),
                        None => Self::put(ty, &format!("self.{name}")),
                    };
                    (Self::rust(ty), p, Self::get(ty))
                }
                Shape::FixedString(n) => ("String".into(), format!("put_string(out, &self.{name}, {n});"), format!("r.string({n})?")),
                Shape::VarString => ("String".into(), format!("put_var_string(out, &self.{name});"), "r.var_string()?".into()),
                Shape::Fixed(ty, n) => (
                    format!("Vec<{}>", Self::rust(ty)),
                    format!(
                        "for i in 0..{n} {{ let v = self.{name}.get(i).cloned().unwrap_or_default(); {} }}",
                        Self::put(ty, "v")
                    ),
                    format!("{{ let mut v = Vec::with_capacity({n}); for _ in 0..{n} {{ v.push({}); }} v }}", Self::get(ty)),
                ),
                Shape::Counted(ty, count) => (
                    format!("Vec<{}>", Self::rust(ty)),
                    format!("for v in &self.{name} {{ {} }}", Self::put(ty, "v")),
                    format!("{{ let mut v = Vec::new(); for _ in 0..{count} {{ v.push({}); }} v }}", Self::get(ty)),
                ),
            };
            writeln!(decl, "    pub {name}: {rust},").unwrap();
            writeln!(put, "        {p}").unwrap();
            writeln!(get, "        let {name} = {g};").unwrap();
            names.push(name);
        }
        let mut s = String::new();
        writeln!(s, "/// {doc}").unwrap();
        writeln!(s, "#[derive(Debug, Clone, Default, PartialEq)]").unwrap();
        // For the cross-check with VPP's own packer (tests/vpp-papi), whose
        // values arrive as JSON.
        writeln!(
            s,
            "#[cfg_attr(feature = \"serde\", derive(serde::Serialize, serde::Deserialize))]"
        )
        .unwrap();
        writeln!(s, "pub struct {rust_name} {{\n{decl}}}").unwrap();
        writeln!(s, "impl Wire for {rust_name} {{").unwrap();
        writeln!(
            s,
            "    #[allow(unused_variables)]\n    fn put(&self, out: &mut Vec<u8>) {{\n{put}    }}"
        )
        .unwrap();
        writeln!(s, "    #[allow(unused_variables)]\n    fn get(r: &mut Reader<'_>) -> Result<Self, DecodeError> {{\n{get}        Ok({rust_name} {{ {} }})\n    }}", names.join(", ")).unwrap();
        writeln!(s, "}}\n").unwrap();
        Some(s)
    }
}

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let mut packages: Vec<Value> = Vec::new();
    for file in [SUPPLEMENT, DEFINITIONS] {
        let path = manifest.join(file);
        println!("cargo:rerun-if-changed={}", path.display());
        let defs: Value =
            serde_json::from_slice(&std::fs::read(&path).expect("read the VPP definitions"))
                .unwrap();
        packages.extend(
            defs["packages"]
                .as_array()
                .expect("packages")
                .iter()
                .cloned(),
        );
    }
    let packages = &packages;

    let mut gen = Gen {
        types: HashMap::new(),
        out: String::new(),
    };
    // Enums and aliases are plain integers and byte arrays on the wire.
    let mut enums = String::new();
    for pkg in packages {
        for e in pkg["enums"].as_array().into_iter().flatten() {
            let name = e["name"].as_str().unwrap();
            let b = base(e["base"].as_str().unwrap()).expect("enum base");
            gen.types.insert(name.to_string(), Ty::Base(b));
            writeln!(
                enums,
                "/// Values of `{name}` ({b} on the wire).\npub mod {name} {{"
            )
            .unwrap();
            let values: BTreeMap<String, i64> =
                serde_json::from_value(e["values"].clone()).unwrap();
            for (k, v) in values {
                writeln!(enums, "    pub const {k}: {b} = {v};").unwrap();
            }
            writeln!(enums, "}}").unwrap();
        }
        for u in pkg["unions"].as_array().into_iter().flatten() {
            let bytes = u["fields"][0]["bytes"].as_u64().unwrap() as usize;
            gen.types
                .insert(u["name"].as_str().unwrap().to_string(), Ty::Bytes(bytes));
        }
    }
    let mut pending_aliases = Vec::new();
    for pkg in packages {
        for a in pkg["aliases"].as_array().into_iter().flatten() {
            let name = a["name"].as_str().unwrap().to_string();
            let go = a["go_base"].as_str().unwrap();
            if let Some(b) = base(go) {
                gen.types.insert(name, Ty::Base(b));
            } else if let Some(n) = go.strip_prefix('[').and_then(|g| g.strip_suffix("]uint8")) {
                gen.types.insert(name, Ty::Bytes(n.parse().unwrap()));
            } else {
                pending_aliases.push((name, go.to_string()));
            }
        }
    }
    // Structs, in dependency order: keep generating what resolves.
    let mut records: Vec<(String, Vec<Value>)> = packages
        .iter()
        .flat_map(|p| p["types"].as_array().into_iter().flatten())
        .map(|t| {
            (
                t["name"].as_str().unwrap().to_string(),
                t["fields"].as_array().unwrap().clone(),
            )
        })
        .collect();
    let mut structs = String::new();
    loop {
        let before = records.len();
        records.retain(|(name, fields)| {
            let rust = camel(name);
            match gen.record(&rust, &format!("VPP type `{name}`."), fields) {
                Some(code) => {
                    structs.push_str(&code);
                    gen.types.insert(name.clone(), Ty::Struct(rust));
                    false
                }
                None => true,
            }
        });
        // Aliases of structs (e.g. address_with_prefix = prefix).
        pending_aliases.retain(|(name, go)| {
            let target = gen
                .types
                .iter()
                .find(|(k, _)| camel(k) == *go)
                .map(|(_, v)| v.clone());
            match target {
                Some(ty) => {
                    gen.types.insert(name.clone(), ty);
                    false
                }
                None => true,
            }
        });
        if records.len() == before {
            break;
        }
    }

    let mut messages = String::new();
    let mut skipped = Vec::new();
    for pkg in packages {
        for m in pkg["messages"].as_array().into_iter().flatten() {
            let name = m["name"].as_str().unwrap();
            let crc = m["crc"].as_str().unwrap();
            let rust = camel(name);
            let deprecated = if m["deprecated"] == true {
                " Deprecated: a newer version exists."
            } else {
                ""
            };
            let doc = format!(
                "VPP message `{name}` (CRC {crc}, package {}).{deprecated}",
                pkg["package"].as_str().unwrap()
            );
            match gen.record(&rust, &doc, m["fields"].as_array().unwrap()) {
                Some(code) => {
                    messages.push_str(&code);
                    writeln!(messages, "impl Message for {rust} {{\n    const NAME: &'static str = \"{name}\";\n    const CRC: &'static str = \"{crc}\";\n}}\n").unwrap();
                }
                None => skipped.push(name.to_string()),
            }
        }
    }
    writeln!(
        gen.out,
        "// Generated by sdk/vpp-binapi/build.rs from {DEFINITIONS}. Do not edit.\n"
    )
    .unwrap();
    writeln!(gen.out, "/// Messages whose field types the definitions do not describe (not generated).\npub const NOT_GENERATED: &[&str] = &{skipped:?};\n").unwrap();
    gen.out.push_str(&enums);
    gen.out.push_str(&structs);
    gen.out.push_str(&messages);
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("vpp_messages.rs");
    std::fs::write(out, gen.out).unwrap();
}
