//! Public URL shorteners: a link through one hides where it leads, which
//! both the link features and the templater (a shortened link's path is a
//! variable slot) need to know.

/// Public URL shorteners commonly seen in SMS. Matched on the whole host.
const SHORTENERS: &[&str] = &[
    "bit.ly",
    "bitly.com",
    "tinyurl.com",
    "t.co",
    "goo.gl",
    "ow.ly",
    "is.gd",
    "buff.ly",
    "rebrand.ly",
    "cutt.ly",
    "shorturl.at",
    "tiny.cc",
    "bit.do",
    "rb.gy",
    "t.ly",
    "s.id",
    "lnkd.in",
    "trib.al",
    "short.io",
    "shorte.st",
    "v.gd",
    "qr.ae",
    "adf.ly",
    "bl.ink",
    "tiny.one",
    "shorturl.com",
    "x.co",
    "clck.ru",
    "u.to",
    "urlz.fr",
    "t2m.io",
    "snip.ly",
    "ift.tt",
    "dlvr.it",
    "2.gp",
    "surl.li",
    "l.ead.me",
    "tr.ee",
    "linktr.ee",
    "vo.la",
    "tinu.be",
    "ln.run",
    "shrtco.de",
    "1url.com",
    "n9.cl",
];

/// Whether `host` is a public URL shortener.
pub fn is_shortener(host: &str) -> bool {
    SHORTENERS.contains(&host)
}
