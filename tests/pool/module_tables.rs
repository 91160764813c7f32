//! The module table in `connpool-core`'s docs lists exactly the modules
//! the crate declares: a module added or removed without its row fails
//! here.

/// The rows of the first table in `source`'s crate docs: each row's first
/// and second cells, backticks removed.
fn table(source: &str) -> Vec<(String, String)> {
    source
        .lines()
        .take_while(|l| l.starts_with("//!"))
        .filter_map(|l| l.strip_prefix("//! | `"))
        .map(|row| {
            let cells: Vec<&str> = row.split(" | ").collect();
            let module = cells[0].trim_end_matches('`').to_owned();
            let second = cells[1].trim_matches('`').to_owned();
            (module, second)
        })
        .collect()
}

/// The modules `source` declares (`mod m;` or `pub mod m;`), with the
/// feature of the `#[cfg(feature = "..")]` just above (empty: none),
/// leaving out the ones compiled only for tests.
fn declared(source: &str) -> Vec<(String, String, bool)> {
    let lines: Vec<&str> = source.lines().collect();
    let mut modules = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let (public, rest) = match line.strip_prefix("pub mod ") {
            Some(rest) => (true, rest),
            None => match line.strip_prefix("mod ") {
                Some(rest) => (false, rest),
                None => continue,
            },
        };
        let attributes: Vec<&str> = lines[..i]
            .iter()
            .rev()
            .take_while(|l| l.starts_with("#["))
            .copied()
            .collect();
        if attributes.iter().any(|a| a.contains("test")) {
            continue;
        }
        let feature = attributes
            .iter()
            .find_map(|a| a.strip_prefix("#[cfg(feature = \""))
            .map(|f| f.trim_end_matches("\")]").to_owned())
            .unwrap_or_default();
        modules.push((rest.trim_end_matches(';').to_owned(), feature, public));
    }
    modules
}

#[test]
fn the_core_s_table_lists_every_module() {
    let source = include_str!("../../crates/core/src/lib.rs");
    let mut listed: Vec<String> = table(source).into_iter().map(|(m, _)| m).collect();
    let mut modules: Vec<String> = declared(source).into_iter().map(|(m, ..)| m).collect();
    listed.sort();
    modules.sort();
    assert_eq!(listed, modules, "the table in crates/core/src/lib.rs");
}

/// The engine (`crates/core/src/engine/`) names no feature, in its code,
/// docs or tests: not a feature's module, nor the words its features are
/// known by. The features attach at the engine's points
/// (`engine/points.rs`) and live in `features/` and the crate's other
/// modules. At most 12 files besides its tests.
#[test]
fn the_engine_names_no_feature() {
    let src = concat!(env!("CARGO_MANIFEST_DIR"), "/crates/core/src");
    let features = std::fs::read_to_string(format!("{src}/features/mod.rs")).unwrap();
    let mut words: Vec<String> = declared(&features)
        .into_iter()
        .map(|(m, ..)| m)
        .filter(|m| !["attach", "ext"].contains(&m.as_str()))
        .collect();
    assert!(words.contains(&"backoff".to_owned()), "{words:?}");
    words.extend(
        [
            "vetting",
            "vet",
            "hooks",
            "hook",
            "metrics",
            "metric",
            "stats",
            "reports",
            "single",
            "slow",
            "keepalive",
            "ping",
            "pings",
            "pinged",
            "pinging",
            "share",
            "shared",
            "sharing",
            "health",
            "probe",
            "probes",
            "min_idle",
            "warm",
            "recycle",
            "recycling",
            "refused",
            "trial",
            "leak",
            "leaks",
            "server_changed",
            "resize",
            "shrink",
            "lending",
            "tending",
        ]
        .map(str::to_owned),
    );
    let mut files = Vec::new();
    let mut dirs = vec![std::path::PathBuf::from(format!("{src}/engine"))];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                files.push(path);
            }
        }
    }
    let sources = files
        .iter()
        .filter(|f| f.file_name().unwrap() != "tests.rs");
    assert!(sources.count() <= 12, "more than 12 files in engine/");
    let mut found = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap().to_lowercase();
        for (n, line) in text.lines().enumerate() {
            // `Vec::resize` is not the feature.
            let line = line.replace(".resize(", ".");
            for token in line.split(|c: char| !(c.is_alphanumeric() || c == '_')) {
                if words.iter().any(|w| w == token) {
                    found.push(format!("{}:{}: {token}", file.display(), n + 1));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "the engine names features:\n{}",
        found.join("\n")
    );
}
