//! The fixture's bootstrap, the first userspace program the kernel starts from the initfs: entered at `_start`.
#![no_std]

#[no_mangle]
pub extern "C" fn _start() -> ! {
    loop {
        unsafe { core::arch::asm!("wfe") };
    }
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    loop {}
}
