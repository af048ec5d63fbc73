//! Who is behind a sender: its class and validity ([`class`]), the number
//! data attribution reads ([`nanpa`], [`carriers`], the area-code table in
//! [`npa`]), longest-prefix attribution over all of it ([`directory`]), and
//! the provider registry with abuse contacts ([`registry`]).
//!
//! No I/O beyond reading what the caller hands in: stores keep the imported
//! rows, commands build a [`Directory`] from them.

pub mod carriers;
pub mod class;
pub mod directory;
pub mod nanpa;
pub mod npa;
pub mod quiet;
pub mod registry;
pub mod use_case;

pub use class::{classify, SenderClass, SenderInfo};
pub use directory::{Attribution, Directory, Fact};
pub use nanpa::{PrefixRow, SourceKind};
pub use npa::NpaTable;
pub use registry::{Provider, Registry};
