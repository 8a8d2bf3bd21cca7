//! A naming component built against a future WIT package version
//! (`userspace:cni@9.0.0`): the host must refuse it before it runs and say
//! which version it needs.

wit_bindgen::generate!({
    inline: "
        package userspace:cni@9.0.0;

        interface log {
            log: func(message: string);
        }

        world naming {
            import log;
            export name: func(ifname: string) -> string;
        }
    ",
});

struct Future;

impl Guest for Future {
    fn name(ifname: String) -> String {
        userspace::cni::log::log(&ifname);
        ifname
    }
}

export!(Future);
