//! The epilogues of `.init` and `.fini` (crtn), opened by crti.
#![no_std]

core::arch::global_asm!(
    ".section .init, \"ax\"",
    "    ldp x29, x30, [sp], #16",
    "    ret",
    ".section .fini, \"ax\"",
    "    ldp x29, x30, [sp], #16",
    "    ret",
);

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    loop {}
}
