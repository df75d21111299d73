package config

import (
	"os"
	"reflect"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

const examplePath = "../configs/ony.example.yaml"

// TestExampleFile keeps configs/ony.example.yaml honest: it must load, show
// exactly the defaults, and document every option with its env variable.
func TestExampleFile(t *testing.T) {
	t.Parallel()
	c, err := Load(examplePath, nil)
	if err != nil {
		t.Fatalf("example does not load:\n%v", err)
	}
	if want := Default(); !reflect.DeepEqual(*c, want) {
		t.Errorf("example values differ from defaults:\n got %+v\nwant %+v", *c, want)
	}

	data, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	for _, lf := range leaves() {
		t.Run(lf.path, func(t *testing.T) {
			t.Parallel()
			key := findKey(doc.Content[0], strings.Split(lf.path, "."))
			if key == nil {
				t.Fatalf("example does not set %s", lf.path)
			}
			mustContain(t, key.HeadComment, "Default")
			mustContain(t, key.HeadComment, "Env: "+lf.env)
			if lf.secret() {
				mustContain(t, key.HeadComment, lf.env+"_FILE")
			}
		})
	}
}

// findKey returns the key node (which carries the comment above it) at path.
func findKey(n *yaml.Node, path []string) *yaml.Node {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value != path[0] {
			continue
		}
		if len(path) == 1 {
			return n.Content[i]
		}
		return findKey(n.Content[i+1], path[1:])
	}
	return nil
}
