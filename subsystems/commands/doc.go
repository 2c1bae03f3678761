// Package commands is the module of exec commands answered over ssh
// (`ssh bastion whoami`, `ssh bastion audit verify`, ...). Each command
// lives in its own file and is built with cobra; all share --help, -o
// json|table and a non-zero exit status on error.
package commands
