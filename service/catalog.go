package service

import (
	"fmt"
	"math"
	"sort"
	"strings"

	"vidmatte"
)

// ModelInfo is a model as clients see it, with its price.
type ModelInfo struct {
	ID               string   `json:"id"`
	Name             string   `json:"name"`
	Description      string   `json:"description"`
	Aliases          []string `json:"aliases"`
	CreditsPerMinute float64  `json:"credits_per_minute"`
}

// Catalog is the set of models a daemon offers: their ids, aliases
// (the manifests' and the operator's) and prices, and the default model.
type Catalog struct {
	models  []ModelInfo
	byName  map[string]string // id or alias → id
	price   map[string]float64
	deflt   string
	idsText string
}

// NewCatalog builds a catalog. extraAliases maps operator-defined aliases to
// model ids; defaultModel is an id or alias. A price must not be negative.
func NewCatalog(models []ModelInfo, extraAliases map[string]string, defaultModel string) (*Catalog, error) {
	c := &Catalog{byName: map[string]string{}, price: map[string]float64{}}
	ids := make([]string, 0, len(models))
	for _, m := range models {
		if m.ID == "" {
			return nil, fmt.Errorf("service: a model has no id")
		}
		if m.CreditsPerMinute < 0 || math.IsNaN(m.CreditsPerMinute) {
			return nil, fmt.Errorf("service: model %s: negative price", m.ID)
		}
		if _, dup := c.byName[m.ID]; dup {
			return nil, fmt.Errorf("service: model %s listed twice", m.ID)
		}
		c.byName[m.ID] = m.ID
		c.price[m.ID] = m.CreditsPerMinute
		ids = append(ids, m.ID)
	}
	for _, m := range models {
		for _, a := range m.Aliases {
			if _, taken := c.byName[a]; !taken {
				c.byName[a] = m.ID
			}
		}
	}
	aliasNames := make([]string, 0, len(extraAliases))
	for a := range extraAliases {
		aliasNames = append(aliasNames, a)
	}
	sort.Strings(aliasNames)
	for _, a := range aliasNames {
		id, ok := c.byName[extraAliases[a]]
		if !ok {
			return nil, fmt.Errorf("service: alias %s names unknown model %s", a, extraAliases[a])
		}
		c.byName[a] = id
	}
	for _, m := range models {
		info := m
		info.Aliases = nil
		for name, id := range c.byName {
			if id == m.ID && name != m.ID {
				info.Aliases = append(info.Aliases, name)
			}
		}
		sort.Strings(info.Aliases)
		if info.Aliases == nil {
			info.Aliases = []string{}
		}
		c.models = append(c.models, info)
	}
	sort.Slice(c.models, func(i, j int) bool { return c.models[i].ID < c.models[j].ID })
	sort.Strings(ids)
	c.idsText = strings.Join(ids, ", ")
	if defaultModel != "" {
		id, ok := c.byName[defaultModel]
		if !ok {
			return nil, fmt.Errorf("service: default model %s is not one of: %s", defaultModel, c.idsText)
		}
		c.deflt = id
	} else if len(ids) > 0 {
		c.deflt = ids[0]
	}
	return c, nil
}

// Resolve returns the id of a model id or alias ("" = the default); an
// unknown one is an invalid-request error naming the field model and
// listing the valid ids.
func (c *Catalog) Resolve(name string) (string, error) {
	if name == "" {
		if c.deflt == "" {
			return "", vidmatte.Errorf(vidmatte.CodeUnavailable, "no model is installed")
		}
		return c.deflt, nil
	}
	if id, ok := c.byName[name]; ok {
		return id, nil
	}
	return "", vidmatte.FieldErrorf("model", "unknown model %q; valid ids: %s", vidmatte.SafeText(name), c.idsText)
}

// Default returns the default model's id.
func (c *Catalog) Default() string { return c.deflt }

// Models lists the models, by id.
func (c *Catalog) Models() []ModelInfo { return append([]ModelInfo(nil), c.models...) }

// Price returns a model's credits per minute.
func (c *Catalog) Price(id string) float64 { return c.price[id] }

// Credits is what a job of the duration costs on the model:
// ceil(duration_seconds) × price / 60, to three decimals.
func (c *Catalog) Credits(id string, durationSec float64) float64 {
	return math.Round(vidmatte.ReservedSeconds(durationSec)*c.price[id]/60*1000) / 1000
}
