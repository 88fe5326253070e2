{
  description = "Consistency tests for PowerSync: endpoint, harness and checker in Rust";

  inputs = {
    nixpkgs.url = "github:NixOS/nixpkgs/nixos-26.05";
    rust-overlay = {
      url = "github:oxalica/rust-overlay";
      inputs.nixpkgs.follows = "nixpkgs";
    };
  };

  outputs = { self, nixpkgs, rust-overlay }:
    let
      systems = [ "x86_64-linux" "aarch64-linux" ];
      forAll = f: nixpkgs.lib.genAttrs systems (system:
        let
          pkgs = import nixpkgs {
            inherit system;
            overlays = [ rust-overlay.overlays.default ];
          };
          # The PowerSync SDK needs rustc >= 1.96.
          toolchain = pkgs.rust-bin.stable."1.96.0".default.override {
            extensions = [ "rust-src" "clippy" "rustfmt" ];
          };
        in f { inherit pkgs toolchain; });
    in {
      devShells = forAll ({ pkgs, toolchain }: {
        default = pkgs.mkShell {
          packages = [
            toolchain
            pkgs.cargo-nextest
            pkgs.postgresql_15
            pkgs.sqlite
            pkgs.llvmPackages.libclang
            pkgs.pkg-config
            pkgs.nodejs_22
            pkgs.docker-compose
            pkgs.chromium # the results browser's headless test
            pkgs.iproute2
            pkgs.nftables
          ];
          LIBCLANG_PATH = "${pkgs.llvmPackages.libclang.lib}/lib";
          # The plots' text.
          HARNESS_FONT = "${pkgs.dejavu_fonts}/share/fonts/truetype/DejaVuSans.ttf";
        };
      });

      checks = forAll ({ pkgs, toolchain }:
        let
          rustPlatform = pkgs.makeRustPlatform { cargo = toolchain; rustc = toolchain; };
        in {
          workspace = rustPlatform.buildRustPackage {
            pname = "powersync-consistency";
            version = "0.1.0";
            src = ./.;
            cargoLock.lockFile = ./Cargo.lock;
            nativeBuildInputs = [ pkgs.pkg-config pkgs.llvmPackages.clang ];
            LIBCLANG_PATH = "${pkgs.llvmPackages.libclang.lib}/lib";
            cargoBuildFlags = [ "--workspace" "--exclude" "powersync-loadable" ];
            cargoTestFlags = [ "--workspace" "--exclude" "powersync-loadable" ];
            doCheck = true;
          };
        });
    };
}
