"""What this machine has: compilers and tools (doctor), CMake and Ninja, the CPU."""
