//! `textwatch keys`: the recipient key (the secret that keys recipient
//! hashes) and its rotation.

use std::process::ExitCode;

use anyhow::{bail, Context as _, Result};
use textwatch_store::keys::KeyInfo;
use textwatch_store::time::{format_ts, now_ms};
use textwatch_store::Location;

#[derive(clap::Args, Debug)]
pub struct KeysArgs {
    #[command(subcommand)]
    command: KeysCommand,
}

#[derive(clap::Subcommand, Debug)]
enum KeysCommand {
    /// The current key's fingerprint (never the key), its hash function,
    /// and a previous key still being matched.
    Show,
    /// Make a new recipient key. New messages are hashed under it; the old
    /// key is kept for the grace period, so a recipient seen before the
    /// rotation is recognised after it (campaign recipient counts do not
    /// double), then deleted. Stop a running `serve` first (it holds the
    /// database; on PostgreSQL, stop the workers), and start it again after.
    ///
    /// Example: textwatch keys rotate --grace-days 30
    Rotate {
        /// Days the previous key is still matched.
        #[arg(long, default_value_t = 30, value_name = "DAYS")]
        grace_days: u32,
    },
}

fn print(db: &Location, k: &KeyInfo) {
    println!("recipient key of {db}");
    println!("  key           {} ({})", k.fingerprint, k.hash);
    if let Some(at) = k.rotated_at {
        println!("  rotated       {}", format_ts(at));
    }
    match &k.previous {
        Some((fp, until)) => println!("  previous key  {fp}, still matched until {}", format_ts(*until)),
        None => println!("  previous key  none kept"),
    }
}

pub fn run(db: &Location, args: KeysArgs) -> Result<ExitCode> {
    let now = now_ms();
    match args.command {
        KeysCommand::Show => {
            let store = db.open_existing().with_context(|| format!("opening database {db}"))?;
            print(db, &store.key_info(now)?);
        }
        KeysCommand::Rotate { grace_days } => {
            if let Location::Sqlite(path) = db {
                if !path.exists() {
                    bail!("no database at {}: nothing to rotate", path.display());
                }
            }
            let mut store = db.open_writer().with_context(|| format!("opening database {db}"))?;
            store.lock_for_writing().with_context(|| {
                format!("rotating the key of {db} (stop a running scan, serve or the workers first)")
            })?;
            store.forget_expired_secret(now)?;
            let k = store.rotate_secret(now, i64::from(grace_days) * 86_400_000)?;
            println!(
                "rotated: new messages are hashed under the new key; start `textwatch serve` (or the workers) again if it runs on this database"
            );
            print(db, &k);
        }
    }
    Ok(ExitCode::SUCCESS)
}
