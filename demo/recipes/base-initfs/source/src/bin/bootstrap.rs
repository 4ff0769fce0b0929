//! Stands in for the bootstrap ELF, which the initfs stores at offset 4096 with its entry point in the header.

fn main() {
    println!("demo bootstrap placeholder: the real bootstrap is linked for the initfs's load address");
}
