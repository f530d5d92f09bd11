# Interfaces for the Cap'n Proto side of the RPC comparison (bench_capnp):
# an echo object and the conformance suite's car-factory chain, the same
# workloads bench_net runs over libocapn.
@0x82a3b1e30cd8f674;

interface Echo {
  echo @0 (payload :Data) -> (payload :Data);
}

interface Car {
  drive @0 () -> (text :Text);
}

interface Factory {
  make @0 (color :Text, model :Text) -> (car :Car);
}

interface Builder {
  factory @0 () -> (factory :Factory);
}

# The bootstrap interface: hands out the echo object and the builder, as
# fetching their sturdyrefs does on the libocapn side.
interface Root {
  echo @0 () -> (echo :Echo);
  builder @1 () -> (builder :Builder);
}
