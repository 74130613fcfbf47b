//go:build !linux

package main

import (
	"context"
	"errors"
)

var errLinuxOnly = errors.New("network namespaces, cgroups and nftables are Linux only")

func hostNamespace() (bool, error) { return false, errLinuxOnly }

func randomMark() uint32 { return 0x6700 }

const afXDPWarning = ""

func hasAFXDP() bool { return false }

func cgroupPeers() []int { return nil }

func devices() ([]string, error) { return nil, errLinuxOnly }

type linkWatch struct{ c interface{ Close() error } }

func watchLinks() (*linkWatch, error) { return nil, errLinuxOnly }

func (w *linkWatch) run(context.Context, func(string)) error { return errLinuxOnly }
