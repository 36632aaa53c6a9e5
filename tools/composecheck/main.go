// composecheck validates compose files as Docker Compose itself loads them (compose-go,
// with the Compose Specification's schema), every profile included, since no Docker engine
// runs where leasehold is tested. Usage: go run . FILE...; exit 1 on the first invalid one.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/compose-spec/compose-go/v2/cli"
)

func main() {
	for _, file := range os.Args[1:] {
		if err := check(file); err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", file, err)
			os.Exit(1)
		}
	}
}

func check(file string) error {
	opts, err := cli.NewProjectOptions([]string{file}, cli.WithOsEnv, cli.WithProfiles([]string{"*"}))
	if err != nil {
		return err
	}
	project, err := opts.LoadProject(context.Background())
	if err != nil {
		return err
	}
	fmt.Printf("%s: valid, services %v\n", file, project.ServiceNames())
	// What each service publishes on the host, as Docker would bind it: the tests check that
	// nothing is open to the network by default.
	for _, name := range project.ServiceNames() {
		for _, p := range project.Services[name].Ports {
			fmt.Printf("%s: %s publishes %s:%s->%d/%s\n", file, name, p.HostIP, p.Published, p.Target, p.Protocol)
		}
	}
	return nil
}
