fn main() -> std::process::ExitCode {
    mirrorflow::cli::main()
}
