//! The prologues of `.init` and `.fini` (crti), which crtn closes.
#![no_std]

core::arch::global_asm!(
    ".section .init, \"ax\"",
    ".global _init",
    "_init:",
    "    stp x29, x30, [sp, #-16]!",
    ".section .fini, \"ax\"",
    ".global _fini",
    "_fini:",
    "    stp x29, x30, [sp, #-16]!",
);

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    loop {}
}
