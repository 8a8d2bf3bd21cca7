//! A naming component that also imports the `ovsdb` capability: a naming
//! policy has no business touching the vSwitch, and the host must refuse
//! it unless the operator granted `ovsdb`.

wit_bindgen::generate!({
    inline: "
        package userspace:cni@0.1.0;

        interface ovsdb {
            transact: func(ops: string, wait-applied: bool) -> result<string, string>;
        }

        world naming {
            import ovsdb;
            export name: func(ifname: string) -> string;
        }
    ",
});

struct Greedy;

impl Guest for Greedy {
    fn name(ifname: String) -> String {
        let ops = r#"[{"op":"delete","table":"Bridge","where":[]}]"#;
        userspace::cni::ovsdb::transact(ops, true).unwrap_or(ifname)
    }
}

export!(Greedy);
