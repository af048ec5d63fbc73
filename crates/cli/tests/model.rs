//! `textwatch train` and `textwatch eval-model` on a small labelled data set
//! written here in the layouts of the real ones (UCI tab-separated,
//! Mishra & Soni CSV).

mod common;

use common::*;

fn write_data(dir: &std::path::Path) {
    let spam = [
        "WINNER!! You have won a £1000 prize. Call 09061701461 to claim now",
        "FREE entry in our weekly competition, txt WIN to 87121 to receive your prize",
        "URGENT! Your mobile number has been awarded a £2000 bonus, call 09050000301",
        "Claim your free ringtone now, reply YES to 80082, 150p/msg",
    ];
    let ham = [
        "are we still on for dinner tonight",
        "ok see you at home later",
        "can you pick up milk on the way back",
        "running late, be there in 10 mins",
    ];
    let mut uci = String::new();
    let mut mishra = String::from("LABEL,TEXT,URL,EMAIL,PHONE\n");
    for i in 0..30 {
        for s in &spam {
            uci.push_str(&format!("spam\t{s} ref {i}\n"));
            mishra.push_str(&format!("spam,\"{s} code {i}\",No,No,Yes\n"));
            mishra.push_str(&format!(
                "Smishing,\"Your account {i} is locked, verify at secure-bank{i}.top now\",Yes,No,No\n"
            ));
        }
        for h in &ham {
            uci.push_str(&format!("ham\t{h} {i}\n"));
            mishra.push_str(&format!("ham,\"{h} number {i}\",No,No,No\n"));
        }
    }
    std::fs::create_dir_all(dir.join("uci-sms-spam")).unwrap();
    std::fs::create_dir_all(dir.join("mishra-soni-smishing")).unwrap();
    std::fs::write(dir.join("uci-sms-spam/SMSSpamCollection"), uci).unwrap();
    std::fs::write(dir.join("mishra-soni-smishing/Dataset_5971.csv"), mishra).unwrap();
}

#[test]
fn eval_model_cross_validates_each_data_set() {
    let dir = tempfile::tempdir().unwrap();
    write_data(dir.path());
    let data = dir.path().to_str().unwrap();
    let missing = dir.path().join("no-such-extra.tsv");
    let wrong = dir.path().join("wrong.jsonl");
    let args = ["eval-model", "--data", data, "--format", "json", "--bits", "14", "--epochs", "5", "--repeats", "2"];
    let run = tw(
        &dir.path().join("x.db"),
        &[&args[..], &["--extra", missing.to_str().unwrap(), "--misclassified", wrong.to_str().unwrap()]].concat(),
    );
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    assert!(String::from_utf8_lossy(&run.stderr).contains("skipping the cross-validation of the shipped categories"));
    let v: Vec<serde_json::Value> = serde_json::from_slice(&run.stdout).unwrap();
    assert_eq!(v.len(), 2);
    // Every error is listed once, with its data set and both labels.
    let errors: u64 = v
        .iter()
        .map(|r| {
            let m = r["scores"]["matrix"].as_array().unwrap();
            (0..m.len())
                .flat_map(|i| (0..m.len()).filter(move |&j| j != i).map(move |j| (i, j)))
                .map(|(i, j)| m[i][j].as_u64().unwrap())
                .sum::<u64>()
        })
        .sum();
    let lines: Vec<serde_json::Value> =
        std::fs::read_to_string(&wrong).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len() as u64, errors);
    for l in &lines {
        assert_ne!(l["label"], l["predicted"]);
        assert!(l["text"].as_str().is_some_and(|t| !t.is_empty()) && l["dataset"].is_string(), "{l}");
    }
    assert_eq!(v[0]["dataset"], "uci-sms-spam");
    assert_eq!(v[0]["texts"], 240, "exact duplicates removed");
    assert_eq!(v[0]["scores"]["labels"], serde_json::json!(["ham", "spam"]));
    let m = &v[0]["scores"]["matrix"];
    let total: u64 =
        m.as_array().unwrap().iter().flat_map(|r| r.as_array().unwrap()).map(|x| x.as_u64().unwrap()).sum();
    assert_eq!(total, 240, "every text is scored once, in its held-out fold");
    assert!(v[0]["scores"]["f1"][1].as_f64().unwrap() > 0.9, "a separable toy set is learned: {}", v[0]["scores"]);
    assert_eq!(v[1]["scores"]["labels"], serde_json::json!(["ham", "spam", "smishing"]));
    // Repeated with other fold splits (two here): `scores` are the first
    // repeat's, `mean` the mean over all.
    for r in &v {
        let reps = r["repeats"].as_array().unwrap();
        assert_eq!(reps.iter().map(|x| x["seed"].as_u64().unwrap()).collect::<Vec<_>>(), [0, 1]);
        assert_eq!(reps[0]["macro_f1"], r["scores"]["macro_f1"]);
        let mean = (reps[0]["macro_f1"].as_f64().unwrap() + reps[1]["macro_f1"].as_f64().unwrap()) / 2.0;
        assert!((r["mean"]["macro_f1"].as_f64().unwrap() - mean).abs() < 1e-12, "{r}");
        assert_eq!(r["mean"]["f1"].as_array().unwrap().len(), r["scores"]["labels"].as_array().unwrap().len());
    }

    // With the project's examples, a third run over the shipped categories.
    let extra = dir.path().join("extra.tsv");
    let mut lines = String::new();
    for i in 0..10 {
        lines.push_str(&format!("political/gotv\tVote for Jane Doe on Tuesday, polls open 7am, precinct {i}\n"));
        lines.push_str(&format!("transactional/delivery\tYour order {i} has shipped, track it in the app\n"));
    }
    std::fs::write(&extra, lines).unwrap();
    let out = tw_ok(&dir.path().join("x.db"), &[&args[..], &["--extra", extra.to_str().unwrap()]].concat());
    let v: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    assert_eq!(v[2]["dataset"], "textwatch-categories");
    assert!(v.iter().any(|s| s["dataset"] == "textwatch-subcategories-political"));
    // For people: the means, each repeat's F1, and the first split's
    // confusion matrix; --repeats 0 is refused.
    let table = tw_ok(
        &dir.path().join("x.db"),
        &[
            "eval-model",
            "--data",
            data,
            "--bits",
            "14",
            "--epochs",
            "5",
            "--repeats",
            "2",
            "--extra",
            extra.to_str().unwrap(),
        ],
    );
    assert!(table.contains("repeated 2 times (seeds 0-1)") && table.contains("seed 0's split alone"), "{table}");
    let out = tw(&dir.path().join("x.db"), &["eval-model", "--data", data, "--repeats", "0"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--repeats must be at least 1"));
    assert_eq!(
        v[2]["scores"]["labels"],
        serde_json::json!([
            "political",
            "civic",
            "charity",
            "news",
            "marketing",
            "transactional",
            "personal",
            "scam",
            "spam"
        ])
    );
    let pol = v.iter().find(|s| s["dataset"] == "textwatch-subcategories-political").unwrap();
    assert!(pol["scores"]["labels"].as_array().unwrap().iter().any(|l| l == "political/gotv"));
}

#[test]
fn train_writes_a_model_that_loads() {
    let dir = tempfile::tempdir().unwrap();
    write_data(dir.path());
    let extra = dir.path().join("extra.tsv");
    std::fs::write(&extra, "# comment\npolitical/gotv\tVote for Jane Doe on Tuesday, polls open 7am\ntransactional/delivery\tYour order has shipped, track it online\n").unwrap();
    let model = dir.path().join("m.twm");
    let sub = dir.path().join("s.twm");
    tw_ok(
        &dir.path().join("x.db"),
        &[
            "train",
            "--data",
            dir.path().to_str().unwrap(),
            "--extra",
            extra.to_str().unwrap(),
            "--out",
            model.to_str().unwrap(),
            "--sub-out",
            sub.to_str().unwrap(),
            "--bits",
            "14",
            "--epochs",
            "3",
        ],
    );
    let bytes = std::fs::read(&model).unwrap();
    let m = textwatch_engine::classify::Model::from_bytes(&bytes).unwrap();
    assert_eq!(m.labels, textwatch_engine::taxonomy::CATEGORIES.to_vec());
    let subs = textwatch_engine::categorize::subs_from_bytes(&std::fs::read(&sub).unwrap()).unwrap();
    // One model per category with several subcategories (all but personal).
    assert_eq!(subs.len(), 8);
    assert!(subs.iter().all(|m| m.labels.iter().all(|l| l.starts_with(m.labels[0].split('/').next().unwrap()))));

    // An old two-word label is refused with what to write instead.
    std::fs::write(&extra, "commercial\tYour order has shipped\n").unwrap();
    let out = tw(
        &dir.path().join("x.db"),
        &[
            "train",
            "--data",
            dir.path().to_str().unwrap(),
            "--extra",
            extra.to_str().unwrap(),
            "--out",
            model.to_str().unwrap(),
            "--sub-out",
            sub.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("category/subcategory"));

    std::fs::write(&extra, "nolabel line\n").unwrap();
    let out = tw(
        &dir.path().join("x.db"),
        &[
            "train",
            "--data",
            dir.path().to_str().unwrap(),
            "--extra",
            extra.to_str().unwrap(),
            "--out",
            model.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("line 1: expected label<TAB>text"));

    // One fold cannot hold anything out: refused, not silently untuned.
    let out = tw(&dir.path().join("x.db"), &["train", "--data", dir.path().to_str().unwrap(), "--tune-folds", "1"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--tune-folds must be 0"));
}

/// The shipped models give the categories a political filter depends on:
/// a county's ballot notice and a news alert about the count are not
/// political; an urgent, lawful fundraising ask is not a scam; phishing and
/// prize fraud in other languages are scams.
#[test]
fn shipped_categories_for_the_cases_filters_depend_on() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("none.db");
    let cases = [
        ("Montgomery County Voter Services: we received your mail ballot but it is missing a signature. Call 610-278-3280 by Nov 9 to fix it.", "civic"),
        ("Reuters: vote counting resumes in Philadelphia; officials expect to finish Friday.", "news"),
        ("LAST CHANCE: our 3X match expires at midnight. Chip in $10 to keep Senator Diaz fighting for you: secure.actblue.com/diaz Stop2End", "political"),
        ("Your Wells Fargo card is locked. Verify your identity now at wellsfargo-secure-id.top/login to restore access", "scam"),
        ("Selamat! Anda terpilih mendapatkan hadiah mobil dari Telkomsel. Transfer biaya administrasi Rp 500 ribu untuk klaim.", "scam"),
        ("omg are you still coming saturday? bring the chips lol", "personal"),
    ];
    for (body, want) in cases {
        let out = tw_ok(&db, &["check", "--from", "+12675550123", "--body", body, "--format", "json"]);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["category"], want, "{body}: {v}");
        assert!(v["subcategory"].is_string(), "a subcategory too: {v}");
    }
}

/// `check` and `scan` give one text the same category, subcategory and
/// findings: both decide through the same rules and models.
#[test]
fn check_and_scan_agree_on_category_and_findings() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("a.db");
    let texts = [
        "Montgomery County Voter Services: your mail ballot was received and will be counted. Questions? Call 610-278-3280",
        "FINAL NOTICE: your Republican Party membership expires tonight. Renew now: winred.com/renew Stop2End",
        "USPS: your package is held for an unpaid fee of $1.99. Pay now at usps-fee-care.top/p to release it",
        "Peak Fitness: your membership renews on the 15th. Manage it in the app. Reply STOP to unsubscribe",
    ];
    let mut lines = String::new();
    for (t, text) in texts.iter().enumerate() {
        for i in 0..3 {
            let v = serde_json::json!({"id": format!("t{t}-{i}"), "ts": 1604502000 + 60 * (t * 3 + i), "from": format!("+12155554{t}{i}0"), "body": text});
            lines.push_str(&format!("{v}\n"));
        }
    }
    let f = dir.path().join("m.jsonl");
    std::fs::write(&f, lines).unwrap();
    tw_ok(&db, &["scan", "-q", f.to_str().unwrap()]);
    let campaigns = campaigns_json(&db);
    assert_eq!(campaigns.len(), texts.len());
    for text in texts {
        let v: serde_json::Value = serde_json::from_str(&tw_ok(
            &dir.path().join("none.db"),
            &["check", "--from", "+12155554000", "--body", text, "--format", "json"],
        ))
        .unwrap();
        let mut words = text.split_whitespace();
        let head = format!("{} {}", words.next().unwrap(), words.next().unwrap()).to_lowercase();
        let c = campaigns.iter().find(|c| c["template"].as_str().unwrap().starts_with(&head)).expect("its campaign");
        assert_eq!(c["category"], v["category"], "{text}");
        assert_eq!(c["subcategory"], v["subcategory"], "{text}");
        let rules = |list: &serde_json::Value, skip: &[&str]| -> Vec<String> {
            let mut r: Vec<String> = list
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f["rule"].as_str().unwrap().to_string())
                .filter(|r| !skip.contains(&r.as_str()))
                .collect();
            r.sort();
            r
        };
        // Campaign-level judgements (quiet hours, impossible senders) aside.
        let skip = ["quiet-hours", "sender-invalid"];
        assert_eq!(rules(&c["findings"], &skip), rules(&v["findings"], &skip), "{text}");
    }
}
