#[tokio::main]
async fn main() {
    let code = wagate::cli::run().await;
    std::process::exit(code);
}
