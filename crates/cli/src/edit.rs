//! `textwatch campaign split` and `textwatch campaign merge`: an analyst's
//! corrections of campaign links, recorded and kept by later scans.

use std::process::ExitCode;

use anyhow::{bail, Context as _, Result};
use textwatch_store::edits::Edit;
use textwatch_store::Location;

use crate::output::Format;

#[derive(clap::Subcommand, Debug)]
pub enum CampaignEdit {
    /// Split variants off a campaign into a campaign of their own: a link
    /// that joined them was wrong. The variants that joined through them go
    /// along; later scans never join the two again.
    ///
    /// VARIANT is a variant's number as `textwatch campaign ID` lists it, or
    /// (four or more hex digits) a prefix of its fingerprint.
    ///
    /// Example: textwatch campaign split 3f9a1c --variant 2 --reason "another organization's script"
    Split {
        /// Campaign id, or a unique prefix of it.
        id: String,
        /// The variant to split off (repeatable).
        #[arg(long = "variant", required = true, value_name = "VARIANT")]
        variants: Vec<String>,
        #[command(flatten)]
        note: Note,
    },
    /// Merge two campaigns: one sender, one purpose. The older keeps its id;
    /// the other's id resolves to it everywhere.
    ///
    /// Example: textwatch campaign merge 3f9a1c 77b2e0 --reason "same operator, confirmed by the provider"
    Merge {
        /// One campaign (id or unique prefix).
        a: String,
        /// The other.
        b: String,
        #[command(flatten)]
        note: Note,
    },
}

/// What is kept with an edit, and how the outcome is printed.
#[derive(clap::Args, Debug)]
pub struct Note {
    /// Why (kept with the edit).
    #[arg(long, default_value = "")]
    reason: String,
    /// Who (kept with the edit; default: $USER).
    #[arg(long, env = "USER", default_value = "analyst")]
    by: String,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
}

pub fn run(db: &Location, edit: CampaignEdit) -> Result<ExitCode> {
    let mut store = db.open_existing().with_context(|| format!("opening database {db}"))?;
    let meaning = textwatch_pipeline::setup::builtin_meaning()?;
    let at = textwatch_store::time::now_ms();
    let (outcome, format, what) = match &edit {
        CampaignEdit::Split { id, variants, note: Note { reason, by, format } } => {
            let Some(d) = store.campaign(id, 0)? else {
                bail!("no campaign {id:?}; `textwatch campaigns` lists them");
            };
            let mut keys = Vec::new();
            for v in variants {
                keys.push(variant_key(&d.variants, v, &d.summary.id)?);
            }
            let e = Edit { at, by, reason };
            (store.split_campaign(id, &keys, &e, Some(&meaning))?, *format, "split")
        }
        CampaignEdit::Merge { a, b, note: Note { reason, by, format } } => {
            let e = Edit { at, by, reason };
            (store.merge_campaigns(a, b, &e, Some(&meaning))?, *format, "merge")
        }
    };
    if format == Format::Table {
        match what {
            "split" => println!(
                "split {} variant{} ({} messages) off campaign {} into campaign {}; they stay apart in later scans",
                outcome.variants,
                if outcome.variants == 1 { "" } else { "s" },
                outcome.messages,
                outcome.campaign,
                outcome.other
            ),
            _ => println!(
                "merged campaign {} ({} variants, {} messages) into campaign {}; its id now resolves there",
                outcome.other, outcome.variants, outcome.messages, outcome.campaign
            ),
        }
    } else {
        println!("{}", serde_json::to_string_pretty(&outcome)?);
    }
    Ok(ExitCode::SUCCESS)
}

/// A variant by its listed number (1-based) or a fingerprint prefix.
fn variant_key(variants: &[textwatch_store::views::VariantView], v: &str, campaign: &str) -> Result<u64> {
    let v = v.trim().to_ascii_lowercase();
    if !v.is_empty() && v.len() <= 3 && v.bytes().all(|b| b.is_ascii_digit()) {
        let n: usize = v.parse()?;
        let Some(x) = n.checked_sub(1).and_then(|i| variants.get(i)) else {
            bail!("campaign {campaign} lists {} variants; there is no variant {n}", variants.len());
        };
        return Ok(u64::from_str_radix(&x.id, 16)?);
    }
    let hits: Vec<_> = variants.iter().filter(|x| x.id.starts_with(&v)).collect();
    match hits.len() {
        1 => Ok(u64::from_str_radix(&hits[0].id, 16)?),
        0 => bail!("campaign {campaign} has no variant {v:?} (give its number or fingerprint, as `textwatch campaign {campaign}` lists them)"),
        n => bail!("{v:?} matches {n} variants of campaign {campaign}; give more of it"),
    }
}
