//! Attribution costs at NANPA scale: reading a 500,000-row block report and
//! a 200,000-row exchange file, building the index, and one lookup (the
//! target is well under a microsecond), plus sender classification.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use textwatch_numbers::nanpa::{read_blocks, read_co};
use textwatch_numbers::{classify, Directory, NpaTable, Registry};

const HOLDERS: [&str; 5] =
    ["Bandwidth.com CLEC, LLC", "Onvoy, LLC", "Level 3 Communications, LLC", "T-Mobile USA, Inc.", "Twilio"];

fn co_file(n: usize) -> String {
    let mut s = String::from("State\tNPA-NXX\tOCN\tCompany\tRateCenter\tEffectiveDate\tUse\tAssignDate\tInitial/Growth\tPooled Code\tIn Service File Updated 11/01/2026\n");
    for i in 0..n {
        let (npa, nxx) = (201 + (i / 800) % 790, 200 + i % 800);
        s.push_str(&format!(
            "PA\t{npa}-{nxx}\t981E\t{}\tPHILADELPHIA\t01/15/2015\tAS\t01/02/2015\tI\tY\tY\n",
            HOLDERS[i % 5]
        ));
    }
    s
}

fn blocks_file(n: usize) -> String {
    let mut s = String::from("Region\tState\tNPA\tNXX\tX\tSTATUS\tCode Holder\tContaminated (Y or N)\tContaminated TNs not Available for Assignment\tRate Center\tBlock Effective Date\tBlock Available Date\tAssigned To\tOCN\tDate Assigned\n");
    for i in 0..n {
        let (npa, nxx, x) = (201 + (i / 8000) % 790, 200 + (i / 10) % 800, i % 10);
        s.push_str(&format!(
            "1\tPA\t{npa}\t{nxx}\t{x}\tAS\tOnvoy, LLC\tN\t\tPHILADELPHIA\t03/01/2019\t\t{}\t4992\t03/01/2019\n",
            HOLDERS[i % 5]
        ));
    }
    s
}

fn bench(c: &mut Criterion) {
    let co = co_file(200_000);
    let blocks = blocks_file(500_000);
    let mut g = c.benchmark_group("import");
    g.sample_size(10);
    g.throughput(Throughput::Elements(200_000));
    g.bench_function("read_co_200k", |b| b.iter(|| read_co(co.as_bytes(), "co.txt").unwrap().rows.len()));
    g.throughput(Throughput::Elements(500_000));
    g.bench_function("read_blocks_500k", |b| {
        b.iter(|| read_blocks(blocks.as_bytes(), "blocks.txt").unwrap().rows.len())
    });
    let rows: Vec<_> = read_co(co.as_bytes(), "co.txt")
        .unwrap()
        .rows
        .into_iter()
        .chain(read_blocks(blocks.as_bytes(), "blocks.txt").unwrap().rows)
        .collect();
    g.throughput(Throughput::Elements(rows.len() as u64));
    g.bench_function("index_700k", |b| b.iter(|| Directory::new(rows.clone(), Registry::shipped()).len()));
    g.finish();

    let dir = Directory::new(rows, Registry::shipped());
    let numbers: Vec<String> = (0..1024).map(|i| format!("+1{}{}{:04}", 201 + i % 700, 200 + i % 800, i * 7)).collect();
    let mut g = c.benchmark_group("lookup");
    g.throughput(Throughput::Elements(1));
    let mut i = 0;
    g.bench_function("top_fact", |b| {
        b.iter(|| {
            i = (i + 1) & 1023;
            dir.top_fact(&numbers[i]).is_some()
        })
    });
    g.bench_function("attribute_owned", |b| {
        b.iter(|| {
            i = (i + 1) & 1023;
            dir.attribute(&numbers[i]).provider.is_some()
        })
    });
    g.bench_function("classify", |b| {
        b.iter(|| {
            i = (i + 1) & 1023;
            classify(&numbers[i], NpaTable::shipped()).class
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
