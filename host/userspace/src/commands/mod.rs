//! One module per CNI command. What they share lives where it belongs:
//! the state dir in `store`, components in `components`.

pub(crate) mod add;
pub(crate) mod check;
pub(crate) mod del;
pub(crate) mod gc;
pub(crate) mod status;
