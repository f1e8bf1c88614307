"""Where moto lacks or bends an AWS behaviour that Opsflow relies on, the fix lives here: one module per
service, each tested against AWS's documented behaviour in tests/local/emulation/."""
