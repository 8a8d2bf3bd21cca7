//! VPP binary API messages: the codecs generated from VPP 25.10's
//! definitions (the `userspace-cni-vpp-binapi` crate, re-exported here)
//! and typed calls into the host's `vpp` capability.

pub use userspace_cni_vpp_binapi::*;

/// Calls into the host's `vpp` capability with typed messages.
pub mod call {
    use super::{Message, Wire};
    use crate::bindings::userspace::cni::vpp::{self as host, VppError};
    use crate::{codes, CniError};

    fn error(message: &str, e: VppError) -> CniError {
        match e {
            VppError::Unreachable(m) => CniError::new(
                codes::TRY_AGAIN_LATER,
                format!("{message}: VPP is unreachable"),
                m,
            ),
            VppError::Timeout(m) => CniError::new(
                codes::TRY_AGAIN_LATER,
                format!("{message}: VPP did not answer"),
                m,
            ),
            VppError::UnknownMessage(m) => CniError::new(
                codes::VSWITCH_FAILURE,
                format!("{message}: the running VPP does not know it"),
                m,
            ),
            // The host refuses what is outside the `vpp` grant's scope
            // before it reaches VPP.
            VppError::Failed(m) if m.starts_with("vpp scope") => {
                CniError::new(codes::COMPONENT_FAILURE, format!("{message}: {m}"), "")
            }
            VppError::Failed(m) => {
                CniError::new(codes::VSWITCH_FAILURE, format!("{message} failed"), m)
            }
        }
    }

    fn decode<M: Message>(bytes: &[u8]) -> Result<M, CniError> {
        M::decode(bytes).map_err(|e| {
            CniError::new(
                codes::VSWITCH_FAILURE,
                format!("{}: unreadable reply from VPP", M::NAME),
                e.0,
            )
        })
    }

    /// Whether the running VPP has message `M` (its name and CRC).
    pub fn knows<M: Message>() -> Result<bool, CniError> {
        host::knows(&M::name_crc()).map_err(|e| error(M::NAME, e))
    }

    /// Sends `request` and decodes the reply as `R`.
    pub fn request<Q: Message, R: Message>(request: &Q) -> Result<R, CniError> {
        let reply =
            host::request(&Q::name_crc(), &request.encode()).map_err(|e| error(Q::NAME, e))?;
        decode(&reply)
    }

    /// Sends dump `request` and decodes every details message as `D`.
    pub fn dump<Q: Message, D: Message>(request: &Q) -> Result<Vec<D>, CniError> {
        let details = host::dump(&Q::name_crc(), &request.encode(), &D::name_crc())
            .map_err(|e| error(Q::NAME, e))?;
        details.iter().map(|d| decode(d)).collect()
    }

    /// Journals `request` as the undo of what the caller is about to do;
    /// a reply retval of 0 or one of `ok_retvals` will count as undone.
    pub fn record_undo<Q: Message + Wire>(
        description: &str,
        request: &Q,
        ok_retvals: &[i32],
    ) -> Result<(), CniError> {
        crate::undo::record_vpp(description, &Q::name_crc(), request.encode(), ok_retvals)
    }
}
