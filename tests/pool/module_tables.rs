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
