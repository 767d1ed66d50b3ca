package main

import (
	"debug/buildinfo"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"
)

// spdxDocument is the part of an SPDX 2.3 JSON document the SBOM fills.
type spdxDocument struct {
	SPDXVersion       string             `json:"spdxVersion"`
	DataLicense       string             `json:"dataLicense"`
	SPDXID            string             `json:"SPDXID"`
	Name              string             `json:"name"`
	DocumentNamespace string             `json:"documentNamespace"`
	CreationInfo      spdxCreationInfo   `json:"creationInfo"`
	Packages          []spdxPackage      `json:"packages"`
	Relationships     []spdxRelationship `json:"relationships"`
}

type spdxCreationInfo struct {
	Created  string   `json:"created"`
	Creators []string `json:"creators"`
}

type spdxPackage struct {
	Name             string            `json:"name"`
	SPDXID           string            `json:"SPDXID"`
	VersionInfo      string            `json:"versionInfo"`
	DownloadLocation string            `json:"downloadLocation"`
	FilesAnalyzed    bool              `json:"filesAnalyzed"`
	ExternalRefs     []spdxExternalRef `json:"externalRefs,omitempty"`
}

type spdxExternalRef struct {
	Category string `json:"referenceCategory"`
	Type     string `json:"referenceType"`
	Locator  string `json:"referenceLocator"`
}

type spdxRelationship struct {
	Element string `json:"spdxElementId"`
	Type    string `json:"relationshipType"`
	Related string `json:"relatedSpdxElement"`
}

// WriteSBOM writes an SPDX 2.3 JSON SBOM of the Go binary at binary to
// path: the module the binary was built from, every module compiled into
// it and the Go toolchain, read from the build information Go embeds in
// every binary, so it lists exactly what the image runs.
func WriteSBOM(path, binary string, m Meta) error {
	info, err := buildinfo.ReadFile(binary)
	if err != nil {
		return fmt.Errorf("sbom: build information of %s: %w", binary, err)
	}
	doc := spdxDocument{
		SPDXVersion:       "SPDX-2.3",
		DataLicense:       "CC0-1.0",
		SPDXID:            "SPDXRef-DOCUMENT",
		Name:              "singleton-webhook-" + m.Version,
		DocumentNamespace: m.Source + "/sbom/" + m.Version + "/" + m.Revision,
		CreationInfo: spdxCreationInfo{
			Created:  m.Created.UTC().Format(time.RFC3339),
			Creators: []string{"Tool: singleton-webhook hack/image"},
		},
	}
	root := goPackage("SPDXRef-Package-main", info.Main.Path, m.Version)
	doc.Packages = append(doc.Packages, root, goPackage("SPDXRef-Package-go", "golang.org/toolchain", info.GoVersion))
	doc.Relationships = append(doc.Relationships,
		spdxRelationship{Element: "SPDXRef-DOCUMENT", Type: "DESCRIBES", Related: root.SPDXID},
		spdxRelationship{Element: root.SPDXID, Type: "DEPENDS_ON", Related: "SPDXRef-Package-go"})
	for i, dep := range info.Deps {
		if dep.Replace != nil {
			dep = dep.Replace
		}
		p := goPackage(fmt.Sprintf("SPDXRef-Package-%d", i), dep.Path, dep.Version)
		doc.Packages = append(doc.Packages, p)
		doc.Relationships = append(doc.Relationships, spdxRelationship{Element: root.SPDXID, Type: "DEPENDS_ON", Related: p.SPDXID})
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return fmt.Errorf("sbom: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("sbom: %w", err)
	}
	return nil
}

// goPackage describes a Go module, with its package URL.
func goPackage(id, path, version string) spdxPackage {
	purl := "pkg:golang/" + path
	if version != "" && version != "(devel)" {
		purl += "@" + strings.TrimPrefix(version, "go")
	}
	return spdxPackage{
		Name:             path,
		SPDXID:           id,
		VersionInfo:      version,
		DownloadLocation: "NOASSERTION",
		ExternalRefs:     []spdxExternalRef{{Category: "PACKAGE-MANAGER", Type: "purl", Locator: purl}},
	}
}
