//! The fixture's guest RedoxFS daemon: a `no_std`, `no_main` program linked against the sysroot, as init is.
#![no_std]
#![no_main]

#[cfg(feature = "fuse")]
compile_error!("the guest redoxfs is built without the default (FUSE) features");

#[link(name = "c")]
extern "C" {
    fn relibc_fixture_sum(first: i32, second: i32) -> i32;
}

#[no_mangle]
pub extern "C" fn main(_argc: isize, _argv: *const *const u8) -> i32 {
    unsafe { relibc_fixture_sum(2, 1) }
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    loop {}
}
