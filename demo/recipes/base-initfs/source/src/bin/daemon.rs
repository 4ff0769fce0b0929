//! Stands in for every daemon and driver of the demo initfs: says which one it is.

fn main() {
    let name = std::env::args().next().unwrap_or_default();
    let name = name.rsplit('/').next().unwrap_or_default();
    println!("{name}: demo placeholder for an initfs daemon");
}
