//! `kv-envelope`: the ops command line for the types this crate ships. Applications register
//! their own types in a `main` just like this one (see `kv_envelope::cli`).

fn main() -> std::process::ExitCode {
    kv_envelope::cli::run(kv_envelope::cli::Registry::with_shipped())
}
