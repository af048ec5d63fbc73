//! Readers for the number-assignment files attribution is built from:
//! NANPA's central office code file, NANPA's thousands-block report, and
//! textwatch's inventory CSV. Each yields [`PrefixRow`]s; a bad line is
//! reported with its line number and the rest is read.

use std::io::{BufRead, BufReader, Read};

use serde::{Deserialize, Serialize};

/// Which kind of source a prefix came from. The order is the precedence:
/// an inventory fact outranks a block holder, which outranks an exchange
/// holder, which outranks libphonenumber's carrier.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SourceKind {
    Inventory,
    NanpaBlock,
    NanpaExchange,
    Carrier,
}

impl SourceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::Inventory => "inventory",
            SourceKind::NanpaBlock => "nanpa-block",
            SourceKind::NanpaExchange => "nanpa-exchange",
            SourceKind::Carrier => "libphonenumber",
        }
    }

    pub fn parse(s: &str) -> Option<SourceKind> {
        Some(match s {
            "inventory" => SourceKind::Inventory,
            "nanpa-block" => SourceKind::NanpaBlock,
            "nanpa-exchange" => SourceKind::NanpaExchange,
            "libphonenumber" => SourceKind::Carrier,
            _ => return None,
        })
    }
}

/// One fact: numbers starting with `prefix` (E.164 digits, no `+`) are
/// served or held by `name`, according to `source`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrefixRow {
    pub prefix: String,
    pub kind: SourceKind,
    pub name: String,
    /// Where the fact came from: the file name, or the inventory's own
    /// `source` column.
    pub source: String,
    /// ISO date of the assignment or of the file, if known.
    pub date: Option<String>,
    /// A human description (`NANPA block 215-555-1`, `OCN 981E`).
    pub detail: String,
}

/// A line that could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reject {
    pub line: u64,
    pub reason: String,
}

/// What a reader got from one file.
#[derive(Clone, Debug, Default)]
pub struct Parsed {
    pub rows: Vec<PrefixRow>,
    pub rejects: Vec<Reject>,
    /// The file's own date (the CO file's "File Updated" header), ISO.
    pub file_date: Option<String>,
}

/// `MM/DD/YYYY` (NANPA's format) or `YYYY-MM-DD` to `YYYY-MM-DD`.
pub fn iso_date(s: &str) -> Option<String> {
    let s = s.trim();
    if s.len() == 10 && s.as_bytes()[4] == b'-' {
        return Some(s.to_string());
    }
    let mut it = s.split('/');
    let (m, d, y) = (it.next()?, it.next()?, it.next()?);
    let (m, d, y): (u32, u32, u32) = (m.trim().parse().ok()?, d.trim().parse().ok()?, y.trim().get(..4)?.parse().ok()?);
    ((1..=12).contains(&m) && (1..=31).contains(&d)).then(|| format!("{y:04}-{m:02}-{d:02}"))
}

fn digits3(s: &str) -> Option<&str> {
    let s = s.trim();
    (s.len() == 3 && s.bytes().all(|b| b.is_ascii_digit())).then_some(s)
}

/// Reads every CSV record as trimmed text fields with its line number;
/// a record the CSV reader cannot read becomes a reject (an I/O error ends
/// the file).
fn for_each_record<R: Read>(
    mut csv: csv::Reader<R>,
    out: &mut Parsed,
    mut f: impl FnMut(u64, Vec<String>, &mut Parsed),
) {
    let mut rec = csv::ByteRecord::new();
    loop {
        let line_no = rec.position().map(|p| p.line()).unwrap_or(0) + 1;
        match csv.read_byte_record(&mut rec) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                out.rejects.push(Reject { line: line_no, reason: e.to_string() });
                if matches!(e.kind(), csv::ErrorKind::Io(_)) {
                    break;
                }
                continue;
            }
        }
        let line_no = rec.position().map(|p| p.line()).unwrap_or(line_no);
        let fields = rec.iter().map(|x| String::from_utf8_lossy(x).trim().to_string()).collect();
        f(line_no, fields, out);
    }
}

fn normalize_header(h: &str) -> String {
    h.chars().filter(|c| c.is_ascii_alphanumeric()).collect::<String>().to_ascii_lowercase()
}

/// Reads NANPA's central office code file (tab-separated: State, NPA-NXX,
/// OCN, Company, RateCenter, EffectiveDate, Use, AssignDate,
/// Initial/Growth, Pooled Code, In Service; the last header cell carries
/// "File Updated MM/DD/YYYY"). Codes without a company are skipped.
pub fn read_co(input: impl Read, file: &str) -> std::io::Result<Parsed> {
    let mut out = Parsed::default();
    let mut cols: Option<Vec<String>> = None;
    let rdr = BufReader::new(input);
    for (i, line) in rdr.split(b'\n').enumerate() {
        let line_no = i as u64 + 1;
        let line = line?;
        // NANPA files are Latin-1 in places; keep what decodes.
        let line = String::from_utf8_lossy(&line);
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split('\t').collect();
        let Some(c) = &cols else {
            if let Some(pos) = line.find("File Updated") {
                out.file_date = iso_date(line[pos + "File Updated".len()..].trim());
            }
            if fields.iter().any(|f| normalize_header(f) == "npanxx") {
                cols = Some(fields.iter().map(|f| normalize_header(f)).collect());
            } else {
                out.rejects.push(Reject {
                    line: line_no,
                    reason: "expected the header line (State, NPA-NXX, OCN, Company, ...)".into(),
                });
            }
            continue;
        };
        let get =
            |name: &str| c.iter().position(|h| h == name).and_then(|i| fields.get(i)).map(|s| s.trim()).unwrap_or("");
        let npanxx = get("npanxx");
        let Some((npa, nxx)) = npanxx.split_once('-').and_then(|(a, b)| Some((digits3(a)?, digits3(b)?))) else {
            out.rejects.push(Reject { line: line_no, reason: format!("NPA-NXX {npanxx:?} is not NNN-NNN") });
            continue;
        };
        let company = get("company");
        if company.is_empty() {
            continue;
        }
        let ocn = get("ocn");
        let date =
            iso_date(get("assigndate")).or_else(|| iso_date(get("effectivedate"))).or_else(|| out.file_date.clone());
        out.rows.push(nanpa_row(SourceKind::NanpaExchange, &[npa, nxx], company, file, date, ocn));
    }
    finish(out, cols.is_some())
}

/// A NANPA fact: `digits` are NPA, NXX (and X for a block).
fn nanpa_row(
    kind: SourceKind,
    digits: &[&str],
    holder: &str,
    file: &str,
    date: Option<String>,
    ocn: &str,
) -> PrefixRow {
    let what = if kind == SourceKind::NanpaBlock { "block" } else { "exchange" };
    let mut detail = format!("NANPA {what} {}", digits.join("-"));
    if !ocn.is_empty() {
        detail.push_str(&format!(", OCN {ocn}"));
    }
    PrefixRow {
        prefix: format!("1{}", digits.concat()),
        kind,
        name: holder.to_string(),
        source: file.to_string(),
        date,
        detail,
    }
}

fn finish(mut out: Parsed, had_header: bool) -> std::io::Result<Parsed> {
    if !had_header && out.rejects.is_empty() {
        out.rejects.push(Reject { line: 1, reason: "empty file: no header line".into() });
    }
    Ok(out)
}

/// Reads NANPA's thousands-block report (Region, State, NPA, NXX, X,
/// STATUS, Code Holder, ..., Assigned To, OCN, Date Assigned), tab- or
/// comma-separated (the delimiter is taken from the header). The block's
/// holder is `Assigned To`, or the code holder when that is empty; blocks
/// held by nobody are skipped.
pub fn read_blocks(input: impl Read, file: &str) -> std::io::Result<Parsed> {
    let mut out = Parsed::default();
    let mut rdr = BufReader::new(input);
    let mut first = Vec::new();
    rdr.read_until(b'\n', &mut first)?;
    let head = String::from_utf8_lossy(&first).to_string();
    let delim = if head.matches('\t').count() > head.matches(',').count() { b'\t' } else { b',' };
    let csv = csv::ReaderBuilder::new()
        .delimiter(delim)
        .has_headers(false)
        .flexible(true)
        .from_reader(std::io::Cursor::new(first).chain(rdr));
    let mut cols: Option<Vec<String>> = None;
    for_each_record(csv, &mut out, |line_no, fields, out| {
        let Some(c) = &cols else {
            let h: Vec<String> = fields.iter().map(|f| normalize_header(f)).collect();
            if h.iter().any(|f| f == "npa") && h.iter().any(|f| f == "nxx") && h.iter().any(|f| f == "x") {
                cols = Some(h);
            } else {
                out.rejects.push(Reject {
                    line: line_no,
                    reason: "expected the header line (Region, State, NPA, NXX, X, ...)".into(),
                });
            }
            return;
        };
        let get =
            |name: &str| c.iter().position(|h| h == name).and_then(|i| fields.get(i)).map(String::as_str).unwrap_or("");
        let (npa, nxx, x) = (get("npa"), get("nxx"), get("x"));
        if digits3(npa).is_none() || digits3(nxx).is_none() || x.len() != 1 || !x.as_bytes()[0].is_ascii_digit() {
            out.rejects.push(Reject { line: line_no, reason: format!("block {npa}-{nxx}-{x} is not NNN-NNN-N") });
            return;
        }
        let holder = match get("assignedto") {
            "" => get("codeholder"),
            h => h,
        };
        if holder.is_empty() {
            return;
        }
        let ocn = get("ocn");
        let date = iso_date(get("dateassigned")).or_else(|| iso_date(get("blockeffectivedate")));
        out.rows.push(nanpa_row(SourceKind::NanpaBlock, &[npa, nxx, x], holder, file, date, ocn));
    });
    finish(out, cols.is_some())
}

/// Reads an inventory CSV: `prefix,provider,source` (header optional):
/// the digits of an E.164 number or range prefix (leading `+`, spaces and
/// dashes allowed), the provider that serves it, and where that fact came
/// from (the file name when empty).
pub fn read_inventory(input: impl Read, file: &str) -> std::io::Result<Parsed> {
    let mut out = Parsed::default();
    let csv = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(input);
    let mut first = true;
    for_each_record(csv, &mut out, |line_no, rec, out| {
        let field = |i: usize| rec.get(i).map(String::as_str).unwrap_or("");
        let raw = field(0);
        if std::mem::take(&mut first) && raw.eq_ignore_ascii_case("prefix") {
            return;
        }
        if raw.is_empty() || raw.starts_with('#') {
            return;
        }
        let digits: String = raw.chars().filter(char::is_ascii_digit).collect();
        let clean = raw.chars().all(|c| c.is_ascii_digit() || matches!(c, '+' | ' ' | '-' | '(' | ')' | '.'));
        if !clean || digits.is_empty() || digits.len() > 15 {
            out.rejects.push(Reject {
                line: line_no,
                reason: format!("prefix {raw:?} is not the digits of an E.164 number or range"),
            });
            return;
        }
        let provider = field(1);
        if provider.is_empty() {
            out.rejects.push(Reject { line: line_no, reason: "provider is empty".into() });
            return;
        }
        let source = match field(2) {
            "" => file,
            s => s,
        };
        // An optional fourth column: the 10DLC use case the number's
        // campaign is registered under (MARKETING, POLITICAL, 2FA, ...).
        let use_case = field(3).trim().to_ascii_uppercase();
        if !use_case.is_empty() && !crate::use_case::is_known(&use_case) {
            out.rejects.push(Reject {
                line: line_no,
                reason: format!(
                    "use case {use_case:?} is not a 10DLC use case ({})",
                    crate::use_case::CODES.iter().map(|(c, _)| *c).collect::<Vec<_>>().join(", ")
                ),
            });
            return;
        }
        out.rows.push(PrefixRow {
            prefix: digits,
            kind: SourceKind::Inventory,
            name: provider.to_string(),
            source: source.to_string(),
            date: None,
            detail: crate::use_case::detail(file, &use_case),
        });
    });
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CO: &str = "State\tNPA-NXX\tOCN\tCompany\tRateCenter\tEffectiveDate\tUse\tAssignDate\tInitial/Growth\tPooled Code\tIn Service File Updated 11/01/2020\n\
        PA\t215-555\t981E\tBandwidth.com CLEC, LLC\tPHILADELPHIA\t01/15/2015\tAS\t01/02/2015\tI\tY\tY\n\
        PA\t215-55X\t981E\tBroken\tPHILADELPHIA\t\tAS\t\tI\tN\tY\n\
        PA\t267-200\t\t\tPHILADELPHIA\t\tUA\t\t\tN\tN\n";

    #[test]
    fn co_file_rows_dates_and_rejects() {
        let p = read_co(CO.as_bytes(), "allutlzd.txt").unwrap();
        assert_eq!(p.file_date.as_deref(), Some("2020-11-01"));
        assert_eq!(p.rows.len(), 1);
        let r = &p.rows[0];
        assert_eq!(
            (r.prefix.as_str(), r.name.as_str(), r.date.as_deref()),
            ("1215555", "Bandwidth.com CLEC, LLC", Some("2015-01-02"))
        );
        assert_eq!(r.detail, "NANPA exchange 215-555, OCN 981E");
        assert_eq!(p.rejects, [Reject { line: 3, reason: "NPA-NXX \"215-55X\" is not NNN-NNN".into() }]);
    }

    #[test]
    fn blocks_tab_or_comma_and_holder_fallback() {
        let tab = "Region\tState\tNPA\tNXX\tX\tSTATUS\tCode Holder\tContaminated (Y or N)\tContaminated TNs not Available for Assignment\tRate Center\tBlock Effective Date\tBlock Available Date\tAssigned To\tOCN\tDate Assigned\n\
            1\tPA\t215\t555\t1\tAS\tOnvoy, LLC\tN\t\tPHILADELPHIA\t03/01/2019\t\tBandwidth.com CLEC, LLC\t981E\t03/01/2019\n\
            1\tPA\t215\t555\t2\tAS\tOnvoy, LLC\tN\t\tPHILADELPHIA\t03/01/2019\t\t\t\t\n\
            1\tPA\t215\t555\tQ\tAS\tOnvoy, LLC\tN\t\tPHILADELPHIA\t03/01/2019\t\t\t\t\n";
        let p = read_blocks(tab.as_bytes(), "blocks.txt").unwrap();
        assert_eq!(p.rows.len(), 2);
        assert_eq!(p.rows[0].prefix, "12155551");
        assert_eq!(p.rows[0].name, "Bandwidth.com CLEC, LLC");
        assert_eq!(p.rows[0].detail, "NANPA block 215-555-1, OCN 981E");
        assert_eq!(p.rows[0].date.as_deref(), Some("2019-03-01"));
        assert_eq!(p.rows[1].name, "Onvoy, LLC");
        assert_eq!(p.rejects.len(), 1);
        assert_eq!(p.rejects[0].line, 4);
        let comma = tab
            .replace('\t', ",")
            .replace("Onvoy, LLC", "\"Onvoy, LLC\"")
            .replace("Bandwidth.com CLEC, LLC", "\"Bandwidth.com CLEC, LLC\"");
        let q = read_blocks(comma.as_bytes(), "blocks.csv").unwrap();
        assert_eq!(
            q.rows,
            p.rows.iter().map(|r| PrefixRow { source: "blocks.csv".into(), ..r.clone() }).collect::<Vec<_>>()
        );
    }

    #[test]
    fn inventory_with_and_without_header() {
        let inv =
            "prefix,provider,source\n+1 215-555-0123,Textsmart Leasing,lease 2020-10\n1267,Twilio,\nabc,X,y\n4420,,z\n";
        let p = read_inventory(inv.as_bytes(), "gw.csv").unwrap();
        assert_eq!(p.rows.len(), 2);
        assert_eq!(p.rows[0].prefix, "12155550123");
        assert_eq!(p.rows[0].source, "lease 2020-10");
        assert_eq!(p.rows[1].source, "gw.csv");
        assert_eq!(p.rejects.iter().map(|r| r.line).collect::<Vec<_>>(), [4, 5]);
        let p = read_inventory("12155550123,Twilio,x\n".as_bytes(), "gw.csv").unwrap();
        assert_eq!(p.rows.len(), 1);
    }

    #[test]
    fn dates() {
        assert_eq!(iso_date("03/01/2019").as_deref(), Some("2019-03-01"));
        assert_eq!(iso_date("2019-03-01").as_deref(), Some("2019-03-01"));
        assert_eq!(iso_date("13/01/2019"), None);
        assert_eq!(iso_date(""), None);
    }
}
