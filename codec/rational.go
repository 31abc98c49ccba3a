package codec

import (
	"strconv"
	"time"

	"github.com/asticode/go-astiav"
)

// Rational is an exact fraction: a frame rate or a time base.
type Rational struct{ Num, Den int }

// Float64 is the fraction's value; 0 when Den is 0.
func (r Rational) Float64() float64 {
	if r.Den == 0 {
		return 0
	}
	return float64(r.Num) / float64(r.Den)
}

// String writes the fraction as "num/den".
func (r Rational) String() string { return strconv.Itoa(r.Num) + "/" + strconv.Itoa(r.Den) }

// Valid reports whether both terms are positive.
func (r Rational) Valid() bool { return r.Num > 0 && r.Den > 0 }

func fromAV(r astiav.Rational) Rational { return Rational{r.Num(), r.Den()} }

func (r Rational) av() astiav.Rational { return astiav.NewRational(r.Num, r.Den) }

// ticksToDuration converts n units of time base tb to a duration.
func ticksToDuration(n int64, tb Rational) time.Duration {
	if tb.Den == 0 {
		return 0
	}
	return time.Duration(astiav.RescaleQ(n, tb.av(), astiav.NewRational(1, int(time.Second))))
}

// durationToTicks converts d to units of time base tb, rounding to nearest.
func durationToTicks(d time.Duration, tb Rational) int64 {
	if tb.Num == 0 {
		return 0
	}
	return astiav.RescaleQ(int64(d), astiav.NewRational(1, int(time.Second)), tb.av())
}
