//! The protocol side of textwatch's SMPP 3.4 gateway, without sockets:
//!
//! - [`frame`]: cutting a byte stream into PDUs, decoding them (with the
//!   maintained `rusmpp` codec) and the few edits a proxy makes;
//! - [`text`]: a short message's bytes to text, by `data_coding`
//!   (GSM 03.38, IA5, Latin-1, UCS-2);
//! - [`concat`]: concatenated messages (UDH and `sar_` TLVs) and their
//!   reassembly, so a verdict is on the whole text;
//! - [`sm`]: the fields a verdict needs, out of `submit_sm`, `data_sm` and
//!   `deliver_sm`;
//! - [`status`]: the `command_status` values textwatch answers with.
//!
//! The proxy itself (sessions, binds, relaying) is in `textwatch-server`.

pub mod concat;
pub mod frame;
pub mod sm;
pub mod status;
pub mod text;

pub use rusmpp;
