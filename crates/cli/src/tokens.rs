//! `textwatch token`: API tokens for `textwatch serve`, with scopes
//! (`ingest`, `check`, `read`, `admin`), stored as SHA-256 hashes.

use std::process::ExitCode;
use textwatch_store::time::now_ms;

use anyhow::{bail, Context as _, Result};
use textwatch_store::Store;

use crate::output::{short_time, Table};

/// What a token may do.
pub const SCOPES: [&str; 4] = ["ingest", "check", "read", "admin"];

#[derive(clap::Args, Debug)]
pub struct TokenArgs {
    #[command(subcommand)]
    command: TokenCommand,
}

#[derive(clap::Subcommand, Debug)]
enum TokenCommand {
    /// Create a token. The token is printed once, alone on the last line
    /// of the output; only its hash is stored.
    ///
    /// Example: TOKEN=$(textwatch token create --scope ingest,check,read | tail -1)
    Create {
        /// Comma-separated scopes: ingest (POST messages, Twilio webhooks),
        /// check (verdicts), read (campaigns, numbers, block list, events,
        /// dashboard), admin (everything, and blocking campaigns).
        #[arg(long, value_delimiter = ',', required = true)]
        scope: Vec<String>,
        /// A name to recognise it by.
        #[arg(long)]
        name: Option<String>,
        /// Make SMPP bind credentials instead: this system_id (at most 15
        /// characters) and a random 8-character password, printed once.
        /// `textwatch smpp` accepts binds with them (scopes check and
        /// ingest needed).
        #[arg(long, value_name = "SYSTEM_ID")]
        smpp: Option<String>,
    },
    /// List tokens: id, scopes, name, creation time, revoked.
    List,
    /// Revoke a token by id.
    Revoke { id: i64 },
}

/// A new random token: `tw_` and 64 hex digits.
pub fn new_token() -> Result<String> {
    let mut b = [0u8; 32];
    getrandom::getrandom(&mut b).map_err(|e| anyhow::anyhow!("no randomness for a token: {e}"))?;
    Ok(format!("tw_{}", b.iter().map(|x| format!("{x:02x}")).collect::<String>()))
}

/// Creates a token in a store; returns it (the only time it is known).
pub fn create(store: &mut dyn Store, scopes: &[String], name: Option<&str>) -> Result<(i64, String)> {
    let clean = clean_scopes(scopes)?;
    let token = new_token()?;
    let id = store.create_token(&textwatch_server::token_hash(&token), &clean.join(","), name, now_ms())?;
    Ok((id, token))
}

/// Scopes, checked and deduplicated.
fn clean_scopes(scopes: &[String]) -> Result<Vec<String>> {
    let mut clean: Vec<String> = Vec::new();
    for s in scopes {
        let s = s.trim().to_ascii_lowercase();
        if !SCOPES.contains(&s.as_str()) {
            bail!("unknown scope {s:?}: scopes are {}", SCOPES.join(", "));
        }
        if !clean.contains(&s) {
            clean.push(s);
        }
    }
    Ok(clean)
}

/// Creates SMPP bind credentials; returns the password (the only time it
/// is known). SMPP 3.4 passwords are at most 8 characters: 8 random ones
/// from 62 give 47 bits, so binds should also be limited by address.
pub fn create_smpp(
    store: &mut dyn Store,
    scopes: &[String],
    system_id: &str,
    name: Option<&str>,
) -> Result<(i64, String)> {
    if system_id.is_empty() || system_id.len() > 15 || !system_id.chars().all(|c| c.is_ascii_graphic()) {
        bail!("an SMPP system_id is 1 to 15 printable ASCII characters; got {system_id:?}");
    }
    let clean = clean_scopes(scopes)?;
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut password = String::with_capacity(8);
    while password.len() < 8 {
        let mut b = [0u8; 16];
        getrandom::getrandom(&mut b).map_err(|e| anyhow::anyhow!("no randomness for a password: {e}"))?;
        // 248 = 4 * 62: no modulo bias.
        password.extend(
            b.iter().filter(|x| **x < 248).map(|x| ALPHABET[(*x % 62) as usize] as char).take(8 - password.len()),
        );
    }
    let hash = textwatch_server::smpp::credential_hash(system_id, &password);
    let label = name.map(str::to_string).unwrap_or_else(|| format!("smpp:{system_id}"));
    let id = store.create_token(&hash, &clean.join(","), Some(&label), now_ms())?;
    Ok((id, password))
}

pub fn run(db: &textwatch_store::Location, args: TokenArgs) -> Result<ExitCode> {
    let mut store = db.open_writer().with_context(|| format!("opening database {db}"))?;
    match args.command {
        TokenCommand::Create { scope, name, smpp: Some(system_id) } => {
            let (id, password) = create_smpp(&mut *store, &scope, &system_id, name.as_deref())?;
            eprintln!(
                "created SMPP credentials {id} (system_id {system_id}) with scopes {}; keep the password now, it is not shown again:",
                scope.join(",")
            );
            println!("{password}");
        }
        TokenCommand::Create { scope, name, smpp: None } => {
            let (id, token) = create(&mut *store, &scope, name.as_deref())?;
            eprintln!("created token {id} with scopes {}; keep it now, it is not shown again:", scope.join(","));
            println!("{token}");
        }
        TokenCommand::List => {
            let mut t =
                Table::new(&[("ID", true), ("SCOPES", false), ("NAME", false), ("CREATED", false), ("REVOKED", false)]);
            for x in store.tokens()? {
                t.row(vec![
                    x.id.to_string(),
                    x.scopes,
                    x.name.unwrap_or_default(),
                    short_time(x.created_at),
                    if x.revoked { "yes".into() } else { String::new() },
                ]);
            }
            print!("{}", t.render());
        }
        TokenCommand::Revoke { id } => {
            if !store.revoke_token(id)? {
                bail!("no token {id}; `textwatch token list` shows them");
            }
            eprintln!("revoked token {id}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
