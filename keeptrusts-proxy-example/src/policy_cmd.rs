//! `kt policy lint` and `kt policy test`.

use std::path::{Path, PathBuf};

use clap::Args;
use keeptrusts_core::golden::{parse_cases, run_case, CaseReport};
use keeptrusts_core::pack::unknown_team_warnings;
use keeptrusts_core::{Diagnostic, Engine, MemoryEscalations, PackError, Principal, Stores};
use serde_json::json;

/// Exit status of an invalid pack or case file.
const INVALID: u8 = 2;
/// Exit status when a file cannot be read or a case fails.
const FAILED: u8 = 1;

#[derive(Debug, Args)]
pub struct LintArgs {
    /// The pack file (YAML).
    #[arg(long, short)]
    file: PathBuf,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
    /// Comma-separated team slugs that exist; targeted teams not in the list are warned about.
    #[arg(long, value_delimiter = ',')]
    known_teams: Option<Vec<String>>,
    /// Read the teams that exist from this store (`sqlite:PATH`, `postgres://…`): targeted teams
    /// it does not know are warned about, and its teams that get only the fallback chain are
    /// listed.
    #[arg(long, conflicts_with = "known_teams")]
    store: Option<String>,
}

/// The pack's teams against the store's: warnings for targeted teams the store does not know
/// (a `teams: [Support]` written with a display name, a team never created), and the store's
/// active teams that no entry targets (they get only the chain everyone gets).
pub fn store_teams(
    engine: &Engine,
    src: &str,
    teams: &[keeptrusts_core::directory::Team],
) -> (Vec<Diagnostic>, Vec<String>) {
    let known: Vec<String> = teams
        .iter()
        .filter(|t| t.archived_at.is_none())
        .map(|t| t.slug.clone())
        .collect();
    let warnings = unknown_team_warnings(engine.spec(), &known, src);
    let named = engine.named_teams();
    let fallback = known.into_iter().filter(|t| !named.contains(t)).collect();
    (warnings, fallback)
}

#[derive(Debug, Args)]
pub struct TestArgs {
    /// The pack file (YAML).
    #[arg(long, short)]
    file: PathBuf,
    /// A folder of case files (`*.yaml`, `*.yml`, `*.json`), or one case file.
    #[arg(long)]
    cases: PathBuf,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

fn read(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

fn print_diag(file: &Path, d: &Diagnostic) {
    eprintln!("{}:{d}", file.display());
}

fn team_principal(team: Option<&str>) -> Principal {
    Principal {
        team: team.map(str::to_owned),
        ..Principal::default()
    }
}

fn load(file: &Path, json_out: bool) -> Result<(String, Engine), u8> {
    let src = match read(file) {
        Ok(s) => s,
        Err(e) => {
            if json_out {
                println!(
                    "{}",
                    json!({ "file": file.display().to_string(), "valid": false, "io_error": e })
                );
            } else {
                eprintln!("kt: {e}");
            }
            return Err(FAILED);
        }
    };
    match Engine::from_yaml(&src) {
        Ok(engine) => Ok((src, engine)),
        Err(err) => {
            report_invalid(file, &err, json_out);
            Err(INVALID)
        }
    }
}

fn report_invalid(file: &Path, err: &PackError, json_out: bool) {
    if json_out {
        println!(
            "{}",
            json!({
                "file": file.display().to_string(),
                "valid": false,
                "errors": err.errors,
                "warnings": err.warnings,
            })
        );
    } else {
        for d in err.errors.iter().chain(&err.warnings) {
            print_diag(file, d);
        }
        eprintln!(
            "{}: invalid pack: {} error(s), {} warning(s)",
            file.display(),
            err.errors.len(),
            err.warnings.len()
        );
    }
}

pub fn lint(args: &LintArgs) -> u8 {
    let (src, engine) = match load(&args.file, args.json) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let mut warnings = engine.warnings().to_vec();
    if let Some(known) = &args.known_teams {
        warnings.extend(unknown_team_warnings(engine.spec(), known, &src));
    }
    let mut fallback_teams = Vec::new();
    if let Some(url) = &args.store {
        let teams =
            match crate::backend::open(url).and_then(|s| s.teams().map_err(|e| e.to_string())) {
                Ok(t) => t,
                Err(e) => {
                    eprintln!("kt: {e}");
                    return FAILED;
                }
            };
        let (w, f) = store_teams(&engine, &src, &teams);
        warnings.extend(w);
        fallback_teams = f;
    }
    let teams = engine.named_teams();
    let chains: Vec<(String, Vec<&'static str>)> = teams
        .iter()
        .map(|t| {
            let c = engine.effective_chain(&team_principal(Some(t)));
            (t.clone(), c.names())
        })
        .collect();
    let group_chains: Vec<(String, Vec<&'static str>)> = engine
        .named_groups()
        .into_iter()
        .map(|g| {
            let p = Principal {
                consumer_group: Some(g.clone()),
                ..Principal::default()
            };
            let c = engine.effective_chain(&p);
            (g, c.names())
        })
        .collect();
    let default_chain = engine.effective_chain(&team_principal(None)).names();
    let spec = engine.spec();
    if args.json {
        let to_map =
            |v: &[(String, Vec<&'static str>)]| -> serde_json::Map<String, serde_json::Value> {
                v.iter().map(|(t, c)| (t.clone(), json!(c))).collect()
            };
        let chain_map = to_map(&chains);
        let group_map = to_map(&group_chains);
        println!(
            "{}",
            json!({
                "file": args.file.display().to_string(),
                "valid": true,
                "pack": { "name": spec.pack.name, "version": spec.pack.version },
                "errors": [],
                "warnings": warnings,
                "chains": chain_map,
                "consumer_group_chains": group_map,
                "default_chain": default_chain,
                "fallback_teams": fallback_teams,
            })
        );
    } else {
        for w in &warnings {
            print_diag(&args.file, w);
        }
        println!(
            "{}: valid pack `{}` {} ({} chain entries, {} warning(s))",
            args.file.display(),
            spec.pack.name,
            spec.pack.version,
            spec.policies.chain.len(),
            warnings.len()
        );
        println!("effective chains:");
        for (t, c) in &chains {
            println!("  team {t}: {}", c.join(" -> "));
        }
        for (g, c) in &group_chains {
            println!("  consumer group {g}: {}", c.join(" -> "));
        }
        if !fallback_teams.is_empty() {
            println!(
                "  teams of the store that no entry targets (they get the chain below): {}",
                fallback_teams.join(", ")
            );
        }
        let label = if chains.is_empty() && group_chains.is_empty() {
            "everyone"
        } else {
            "everyone else"
        };
        println!(
            "  {label}: {}",
            if default_chain.is_empty() {
                "(empty)".to_owned()
            } else {
                default_chain.join(" -> ")
            }
        );
    }
    0
}

fn case_files(path: &Path) -> Result<Vec<PathBuf>, String> {
    if path.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let dir =
        std::fs::read_dir(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut files: Vec<PathBuf> = dir
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.is_file()
                && matches!(
                    p.extension().and_then(|e| e.to_str()),
                    Some("yaml" | "yml" | "json")
                )
        })
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(format!(
            "no case files (*.yaml, *.yml, *.json) in {}",
            path.display()
        ));
    }
    Ok(files)
}

pub fn test(args: &TestArgs) -> u8 {
    let (_, engine) = match load(&args.file, args.json) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let files = match case_files(&args.cases) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("kt: {e}");
            return FAILED;
        }
    };
    let mut reports: Vec<(PathBuf, CaseReport)> = Vec::new();
    let mut ordinal = 0;
    for file in &files {
        let src = match read(file) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("kt: {e}");
                return FAILED;
            }
        };
        let cases = match parse_cases(&src) {
            Ok(c) => c,
            Err(err) => {
                for d in &err.errors {
                    print_diag(file, d);
                }
                eprintln!("{}: invalid case file", file.display());
                return INVALID;
            }
        };
        for case in &cases {
            ordinal += 1;
            let escalations = MemoryEscalations::new();
            let stores = Stores::new(&escalations);
            reports.push((file.clone(), run_case(&engine, case, ordinal, &stores)));
        }
    }
    let passed = reports.iter().filter(|(_, r)| r.passed).count();
    let failed = reports.len() - passed;
    if args.json {
        let cases: Vec<serde_json::Value> = reports
            .iter()
            .map(|(f, r)| {
                json!({
                    "file": f.display().to_string(),
                    "name": r.name,
                    "passed": r.passed,
                    "mismatches": r.mismatches,
                    "verdict": r.decision.as_ref().map(|d| d.verdict),
                    "status": r.decision.as_ref().map(|d| d.status),
                    "code": r.decision.as_ref().and_then(|d| d.code()),
                })
            })
            .collect();
        println!(
            "{}",
            json!({ "passed": passed, "failed": failed, "cases": cases })
        );
    } else {
        for (f, r) in &reports {
            if r.passed {
                println!("PASS {} ({})", r.name, f.display());
            } else {
                println!("FAIL {} ({})", r.name, f.display());
                for m in &r.mismatches {
                    println!("     {m}");
                }
            }
        }
        println!("{passed} passed, {failed} failed");
    }
    if failed == 0 {
        0
    } else {
        FAILED
    }
}
