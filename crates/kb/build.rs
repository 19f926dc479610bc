//! Embeds the demo knowledge base (content/articles/*.md) and the evaluation set
//! (content/eval.json) in the binary.

use std::fmt::Write as _;
use std::path::PathBuf;

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let content = manifest.join("content");
    println!("cargo:rerun-if-changed={}", content.display());
    let mut articles: Vec<PathBuf> = std::fs::read_dir(content.join("articles"))
        .map(|dir| {
            dir.filter_map(Result::ok)
                .map(|entry| entry.path())
                .filter(|path| path.extension().is_some_and(|ext| ext == "md"))
                .collect()
        })
        .unwrap_or_default();
    articles.sort();
    let mut code = String::from("/// (slug, file text) of every demo article, by slug.\n");
    code.push_str("pub(crate) const DEMO_ARTICLES: &[(&str, &str)] = &[\n");
    for path in &articles {
        let slug = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let _ = writeln!(
            code,
            "    ({slug:?}, include_str!({:?})),",
            path.display().to_string()
        );
    }
    code.push_str("];\n");
    let eval = content.join("eval.json");
    if eval.exists() {
        let _ = writeln!(
            code,
            "pub(crate) const EVAL_JSON: &str = include_str!({:?});",
            eval.display().to_string()
        );
    } else {
        code.push_str("pub(crate) const EVAL_JSON: &str = \"[]\";\n");
    }
    let out =
        PathBuf::from(std::env::var_os("OUT_DIR").unwrap_or_default()).join("demo_content.rs");
    if let Err(e) = std::fs::write(&out, code) {
        panic!("writing {}: {e}", out.display());
    }
}
