//! The NANP area-code table: which area codes (NPAs) are assigned, where they
//! are, and which time zones they cover.
//!
//! The shipped table (`data/npa.tsv`) is derived from NANPA's "NPA Database"
//! report by [`derive_table`], run as
//! `textwatch numbers npa-table --from ../shared/data/nanp/npa_report.csv > crates/numbers/data/npa.tsv`.
//! NANPA gives each code a zone letter (`E`, `C`, `M`, `P`, `A`, or several
//! for codes that span zones) or a UTC offset; the derivation turns those
//! into IANA zone names using the code's location, so that daylight-saving
//! time is right (Arizona, Saskatchewan, Hawaii and the territories keep
//! standard time all year).

use std::collections::HashMap;
use std::io::Read;
use std::sync::OnceLock;

/// One area code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Npa {
    pub npa: u16,
    /// Assigned by NANPA (may not be in service yet).
    pub assigned: bool,
    pub in_service: bool,
    /// State, province or country as NANPA writes it (`PA`, `ONTARIO`).
    pub location: String,
    pub country: String,
    /// IANA zone names (several for codes spanning zones); empty if unknown.
    pub zones: Vec<String>,
}

/// Area codes by number.
#[derive(Clone, Debug, Default)]
pub struct NpaTable {
    by_npa: HashMap<u16, Npa>,
    /// The NANPA report date the table came from.
    pub file_date: String,
}

const SHIPPED: &str = include_str!("../data/npa.tsv");

impl NpaTable {
    /// The table shipped with textwatch.
    pub fn shipped() -> &'static NpaTable {
        static T: OnceLock<NpaTable> = OnceLock::new();
        T.get_or_init(|| NpaTable::parse(SHIPPED))
    }

    /// Parses the derived TSV format (`# file date: ...` comment, then
    /// `npa assigned in_service location country zones`).
    pub fn parse(text: &str) -> NpaTable {
        let mut t = NpaTable::default();
        for line in text.lines() {
            if let Some(d) = line.strip_prefix("# file date: ") {
                t.file_date = d.trim().to_string();
                continue;
            }
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            let f: Vec<&str> = line.split('\t').collect();
            if f.len() < 6 {
                continue;
            }
            let Ok(npa) = f[0].parse::<u16>() else { continue };
            let zones = f[5].split(',').filter(|z| !z.is_empty()).map(str::to_string).collect();
            t.by_npa.insert(
                npa,
                Npa {
                    npa,
                    assigned: f[1] == "Y",
                    in_service: f[2] == "Y",
                    location: f[3].to_string(),
                    country: f[4].to_string(),
                    zones,
                },
            );
        }
        t
    }

    pub fn get(&self, npa: u16) -> Option<&Npa> {
        self.by_npa.get(&npa)
    }

    pub fn len(&self) -> usize {
        self.by_npa.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_npa.is_empty()
    }
}

/// Errors reading NANPA's NPA report.
#[derive(Debug, thiserror::Error)]
pub enum NpaReportError {
    #[error("reading the NPA report: {0}")]
    Csv(#[from] csv::Error),
    #[error("the NPA report has no header line with NPA_ID and TIME_ZONE columns")]
    NoHeader,
}

/// Derives the shipped TSV table from NANPA's NPA report CSV
/// (`npa_report.csv`: a `File Date,MM/DD/YYYY` line, then a header with
/// `NPA_ID`, `ASSIGNED`, `IN_SERVICE`, `LOCATION`, `COUNTRY`, `TIME_ZONE`).
/// Short rows are read with the columns they have.
pub fn derive_table(input: impl Read) -> Result<String, NpaReportError> {
    let mut rdr = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(input);
    let mut file_date = String::new();
    let mut cols: Option<HashMap<String, usize>> = None;
    let mut rows = Vec::new();
    for rec in rdr.records() {
        let rec = rec?;
        let Some(c) = &cols else {
            let first = rec.get(0).unwrap_or("").trim();
            if first.eq_ignore_ascii_case("File Date") {
                file_date = crate::nanpa::iso_date(rec.get(1).unwrap_or("")).unwrap_or_default();
            } else if first == "NPA_ID" {
                cols = Some(rec.iter().enumerate().map(|(i, h)| (h.trim().to_string(), i)).collect());
            }
            continue;
        };
        let get = |name: &str| c.get(name).and_then(|&i| rec.get(i)).unwrap_or("").trim();
        let Ok(npa) = get("NPA_ID").parse::<u16>() else { continue };
        let location = get("LOCATION").to_string();
        let country = get("COUNTRY").to_string();
        let zones = iana_zones(get("TIME_ZONE"), &location, &country);
        rows.push(format!(
            "{npa}\t{}\t{}\t{location}\t{country}\t{}",
            if get("ASSIGNED").eq_ignore_ascii_case("yes") { "Y" } else { "N" },
            if get("IN_SERVICE").eq_ignore_ascii_case("y") { "Y" } else { "N" },
            zones.join(",")
        ));
    }
    if cols.is_none() {
        return Err(NpaReportError::NoHeader);
    }
    rows.sort();
    let mut out = String::new();
    out.push_str("# NANP area codes, derived from NANPA's NPA Database report by `textwatch numbers npa-table`.\n");
    out.push_str(&format!("# file date: {file_date}\n"));
    out.push_str("# npa\tassigned\tin_service\tlocation\tcountry\tzones\n");
    for r in rows {
        out.push_str(&r);
        out.push('\n');
    }
    Ok(out)
}

/// IANA zones for a NANPA zone code at a location. Unknown combinations give
/// no zone (the quiet-hours rule then does not judge that code).
pub fn iana_zones(code: &str, location: &str, country: &str) -> Vec<String> {
    let code = code.trim().trim_matches(|c| c == '(' || c == ')');
    let loc = location.to_ascii_uppercase();
    let canada = country.eq_ignore_ascii_case("CANADA");
    let us = country.eq_ignore_ascii_case("US");
    let fixed = match code.replace(' ', "").as_str() {
        "UTC-10" => Some("Pacific/Honolulu"),
        "UTC-9" => Some("America/Anchorage"),
        "UTC+10" => Some(if loc == "CNMI" { "Pacific/Saipan" } else { "Pacific/Guam" }),
        "UTC-11" => Some("Pacific/Pago_Pago"),
        _ => None,
    };
    if let Some(z) = fixed {
        return vec![z.to_string()];
    }
    if !us && !canada {
        return Vec::new();
    }
    let mut out = Vec::new();
    for letter in code.chars() {
        let z = match (letter, canada) {
            ('E', false) => "America/New_York",
            ('C', false) => "America/Chicago",
            ('M', false) if loc == "AZ" => "America/Phoenix",
            ('M', false) => "America/Denver",
            ('P', false) => "America/Los_Angeles",
            ('A', false) => "America/Puerto_Rico",
            ('E', true) => "America/Toronto",
            ('C', true) if loc == "SASKATCHEWAN" => "America/Regina",
            ('C', true) => "America/Winnipeg",
            ('M', true) => "America/Edmonton",
            ('P', true) => "America/Vancouver",
            ('A', true) => "America/Halifax",
            ('N', true) => "America/St_Johns",
            _ => continue,
        };
        if !out.iter().any(|o| o == z) {
            out.push(z.to_string());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_table_knows_philadelphia_and_multi_zone_codes() {
        let t = NpaTable::shipped();
        assert!(t.len() > 700, "{}", t.len());
        let pa = t.get(215).unwrap();
        assert!(pa.assigned && pa.in_service);
        assert_eq!(pa.location, "PA");
        assert_eq!(pa.zones, ["America/New_York"]);
        assert_eq!(t.get(850).unwrap().zones, ["America/New_York", "America/Chicago"]);
        assert_eq!(t.get(808).unwrap().zones, ["Pacific/Honolulu"]);
        assert_eq!(t.get(602).unwrap().zones, ["America/Phoenix"]);
        assert!(!t.get(555).map(|n| n.assigned).unwrap_or(false));
    }

    #[test]
    fn derive_reads_the_report_format_and_tolerates_short_rows() {
        let report = "File Date,03/04/2020\n\
            NPA_ID,type_of_code,ASSIGNED,LOCATION,COUNTRY,IN_SERVICE,TIME_ZONE\n\
            215,General Purpose Code,Yes,PA,US,Y,E\n\
            306,General Purpose Code,Yes,SASKATCHEWAN,CANADA,Y,C\n\
            999,General Purpose Code,No\n";
        let out = derive_table(report.as_bytes()).unwrap();
        let t = NpaTable::parse(&out);
        assert_eq!(t.file_date, "2020-03-04");
        assert_eq!(t.get(306).unwrap().zones, ["America/Regina"]);
        assert!(!t.get(999).unwrap().assigned);
        assert!(derive_table("a,b\n1,2\n".as_bytes()).is_err());
    }
}
