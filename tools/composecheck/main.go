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
	opts, err := cli.NewProjectOptions([]string{file}, cli.WithProfiles([]string{"*"}))
	if err != nil {
		return err
	}
	project, err := opts.LoadProject(context.Background())
	if err != nil {
		return err
	}
	fmt.Printf("%s: valid, services %v\n", file, project.ServiceNames())
	return nil
}
