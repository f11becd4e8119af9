// Pins HashiCorp Vault, built only to serve as a test server (`vault server -dev`): the tests
// run the controller against it as well as against OpenBao. Vault is under the Business Source
// License 1.1 (BUSL-1.1); nothing of it is shipped with this project.
//
// v1.21.1 is the newest release whose api and sdk sub-modules (replaced by local folders in
// Vault's own go.mod) are published at versions that match its code: v1.21.2 and later need
// unpublished sdk changes. go.sum pins every module by hash; built by scripts/tools.sh.
module vak-tools/vault

go 1.25.3

require github.com/hashicorp/vault v1.21.1

replace github.com/99designs/keyring => github.com/Jeffail/keyring v1.2.3

replace github.com/ma314smith/signedxml v1.1.1 => github.com/moov-io/signedxml v1.1.1
