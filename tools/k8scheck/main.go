// k8scheck validates Kubernetes manifests against the API's own Go types (k8s.io/api),
// decoding strictly (sigs.k8s.io/yaml: an unknown or misspelt field, or a value of the
// wrong type, is an error), since no Kubernetes runs where leasehold is tested. It then
// checks what the types cannot: every container of a Deployment has liveness and
// readiness probes on a port it declares, the Deployment's selector matches its pods, a
// Service selects pods of a Deployment and targets a port they declare, and every
// secretKeyRef names a Secret and key of the same files.
// Usage: go run . FILE...; exit 1 on the first problem.
package main

import (
	"bytes"
	"fmt"
	"os"
	"regexp"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"
)

type manifests struct {
	deployments []appsv1.Deployment
	services    []corev1.Service
	secrets     map[string]corev1.Secret
}

func main() {
	for _, file := range os.Args[1:] {
		if err := check(file); err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", file, err)
			os.Exit(1)
		}
	}
}

var separator = regexp.MustCompile(`(?m)^---\s*$`)

func check(file string) error {
	text, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	m := manifests{secrets: map[string]corev1.Secret{}}
	var kinds []string
	for i, doc := range separator.Split(string(text), -1) {
		if len(bytes.TrimSpace(stripComments([]byte(doc)))) == 0 {
			continue
		}
		var meta metav1.TypeMeta
		if err := yaml.Unmarshal([]byte(doc), &meta); err != nil {
			return fmt.Errorf("document %d: %v", i+1, err)
		}
		kind := meta.APIVersion + " " + meta.Kind
		var target any
		switch kind {
		case "apps/v1 Deployment":
			m.deployments = append(m.deployments, appsv1.Deployment{})
			target = &m.deployments[len(m.deployments)-1]
		case "v1 Service":
			m.services = append(m.services, corev1.Service{})
			target = &m.services[len(m.services)-1]
		case "v1 Secret":
			target = &corev1.Secret{}
		default:
			return fmt.Errorf("document %d: %q is not a kind this checker knows", i+1, kind)
		}
		if err := yaml.UnmarshalStrict([]byte(doc), target); err != nil {
			return fmt.Errorf("document %d (%s): %v", i+1, meta.Kind, err)
		}
		if s, ok := target.(*corev1.Secret); ok {
			m.secrets[s.Name] = *s
		}
		kinds = append(kinds, meta.Kind)
	}
	if err := m.consistent(); err != nil {
		return err
	}
	fmt.Printf("%s: valid, %v\n", file, kinds)
	return nil
}

func stripComments(doc []byte) []byte {
	return regexp.MustCompile(`(?m)#.*$`).ReplaceAll(doc, nil)
}

func (m manifests) consistent() error {
	for _, d := range m.deployments {
		if d.Spec.Selector == nil || !matches(d.Spec.Selector.MatchLabels, d.Spec.Template.Labels) {
			return fmt.Errorf("deployment %s: its selector does not match its pods' labels", d.Name)
		}
		for _, c := range d.Spec.Template.Spec.Containers {
			for name, p := range map[string]*corev1.Probe{"liveness": c.LivenessProbe, "readiness": c.ReadinessProbe} {
				if p == nil || p.HTTPGet == nil {
					return fmt.Errorf("deployment %s, container %s: no HTTP %s probe", d.Name, c.Name, name)
				}
				if !declares(c, p.HTTPGet.Port) {
					return fmt.Errorf("deployment %s, container %s: the %s probe's port %s is not one the container declares", d.Name, c.Name, name, p.HTTPGet.Port.String())
				}
			}
			for _, e := range c.Env {
				if e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
					continue
				}
				ref := e.ValueFrom.SecretKeyRef
				s, ok := m.secrets[ref.Name]
				_, inData := s.Data[ref.Key]
				_, inString := s.StringData[ref.Key]
				if !ok || !(inData || inString) {
					return fmt.Errorf("deployment %s, container %s: %s comes from secret %s key %s, which these files do not define", d.Name, c.Name, e.Name, ref.Name, ref.Key)
				}
			}
		}
	}
	for _, s := range m.services {
		var pods *appsv1.Deployment
		for i := range m.deployments {
			if len(s.Spec.Selector) > 0 && matches(s.Spec.Selector, m.deployments[i].Spec.Template.Labels) {
				pods = &m.deployments[i]
			}
		}
		if pods == nil {
			return fmt.Errorf("service %s: selects the pods of no deployment here", s.Name)
		}
		for _, p := range s.Spec.Ports {
			found := false
			for _, c := range pods.Spec.Template.Spec.Containers {
				found = found || declares(c, p.TargetPort)
			}
			if !found {
				return fmt.Errorf("service %s: target port %s is not one deployment %s declares", s.Name, p.TargetPort.String(), pods.Name)
			}
		}
	}
	return nil
}

// matches: every label the selector asks for is on the pod.
func matches(selector, labels map[string]string) bool {
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

func declares(c corev1.Container, port intstr.IntOrString) bool {
	for _, p := range c.Ports {
		if (port.Type == intstr.String && p.Name == port.StrVal) || (port.Type == intstr.Int && p.ContainerPort == port.IntVal) {
			return true
		}
	}
	return false
}
