//! What every QEMU (`mps2-an386`) program shares: ending the emulation with a status through
//! semihosting, and fault handlers that fail the run instead of hanging it.

use cortex_m_semihosting::debug;

/// Ends the QEMU session with `status`; spins if no emulator or debugger is listening.
pub fn exit(status: debug::ExitStatus) -> ! {
    debug::exit(status);
    loop {
        cortex_m::asm::wfi();
    }
}

/// Defines `HardFault` and `DefaultHandler` that print `<name>: ...` over semihosting and end
/// the QEMU run with failure. Use once per program: `firmware::qemu_fault_handlers!("name");`.
#[macro_export]
macro_rules! qemu_fault_handlers {
    ($name:literal) => {
        /// A `HardFault` (bad memory access, undefined instruction, ...) fails the run.
        #[cortex_m_rt::exception]
        unsafe fn HardFault(frame: &cortex_m_rt::ExceptionFrame) -> ! {
            cortex_m_semihosting::hprintln!(concat!($name, ": HardFault: {:?}"), frame);
            $crate::qemu::exit(cortex_m_semihosting::debug::EXIT_FAILURE)
        }

        /// Any other unexpected exception or interrupt fails the run too.
        #[cortex_m_rt::exception]
        unsafe fn DefaultHandler(irqn: i16) {
            cortex_m_semihosting::hprintln!(
                concat!($name, ": unexpected exception or interrupt {}"),
                irqn
            );
            $crate::qemu::exit(cortex_m_semihosting::debug::EXIT_FAILURE)
        }
    };
}
