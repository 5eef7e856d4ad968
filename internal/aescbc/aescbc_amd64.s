//go:build amd64 && !purego

#include "textflag.h"

// EXPAND turns the AES-128 round key in X1 into the next one (FIPS-197
// §5.2 with AESKEYGENASSIST; Intel's AES-NI white paper, fig. 24).
// Clobbers X2, X3.
#define EXPAND(rcon) \
	AESKEYGENASSIST $rcon, X1, X2; \
	PSHUFD $0xff, X2, X2; \
	MOVO X1, X3; \
	PSLLDQ $4, X3; \
	PXOR X3, X1; \
	PSLLDQ $4, X3; \
	PXOR X3, X1; \
	PSLLDQ $4, X3; \
	PXOR X3, X1; \
	PXOR X2, X1

// EXPANDDEC expands the next round key and stores its InvMixColumns at
// off(BX): the equivalent inverse cipher's key for that round.
#define EXPANDDEC(rcon, off) \
	EXPAND(rcon); \
	AESIMC X1, X4; \
	MOVOU X4, off(BX)

// func expandDecKey128(key *byte, dec *[176]byte)
TEXT ·expandDecKey128(SB), NOSPLIT, $0-16
	MOVQ key+0(FP), AX
	MOVQ dec+8(FP), BX
	MOVOU (AX), X1
	MOVOU X1, 160(BX) // round 0's key is applied last
	EXPANDDEC(0x01, 144)
	EXPANDDEC(0x02, 128)
	EXPANDDEC(0x04, 112)
	EXPANDDEC(0x08, 96)
	EXPANDDEC(0x10, 80)
	EXPANDDEC(0x20, 64)
	EXPANDDEC(0x40, 48)
	EXPANDDEC(0x80, 32)
	EXPANDDEC(0x1b, 16)
	EXPAND(0x36)
	MOVOU X1, 0(BX) // round 10's key is applied first, as is
	RET

// ROUND8 applies one AESDEC round with the key at off(AX) to X0..X7.
#define ROUND8(off) \
	MOVOU off(AX), X8; \
	AESDEC X8, X0; \
	AESDEC X8, X1; \
	AESDEC X8, X2; \
	AESDEC X8, X3; \
	AESDEC X8, X4; \
	AESDEC X8, X5; \
	AESDEC X8, X6; \
	AESDEC X8, X7

#define ROUND1(off) \
	MOVOU off(AX), X8; \
	AESDEC X8, X0

// func decryptCBC128(dec *[176]byte, iv *[16]byte, dst *byte, src *byte, blocks int)
//
// Eight blocks per iteration keep eight AESDEC chains in flight. Every
// ciphertext block a batch XORs with is loaded before the batch stores
// anything, so dst == src (in place) is safe; X9 carries the previous
// batch's last ciphertext block.
TEXT ·decryptCBC128(SB), NOSPLIT, $0-40
	MOVQ dec+0(FP), AX
	MOVQ iv+8(FP), BX
	MOVQ dst+16(FP), DI
	MOVQ src+24(FP), SI
	MOVQ blocks+32(FP), CX
	MOVOU (BX), X9
	CMPQ CX, $8
	JB   tail

loop8:
	MOVOU 0(SI), X0
	MOVOU 16(SI), X1
	MOVOU 32(SI), X2
	MOVOU 48(SI), X3
	MOVOU 64(SI), X4
	MOVOU 80(SI), X5
	MOVOU 96(SI), X6
	MOVOU 112(SI), X7
	MOVOU 0(AX), X8
	PXOR X8, X0
	PXOR X8, X1
	PXOR X8, X2
	PXOR X8, X3
	PXOR X8, X4
	PXOR X8, X5
	PXOR X8, X6
	PXOR X8, X7
	ROUND8(16)
	ROUND8(32)
	ROUND8(48)
	ROUND8(64)
	ROUND8(80)
	ROUND8(96)
	ROUND8(112)
	ROUND8(128)
	ROUND8(144)
	MOVOU 160(AX), X8
	AESDECLAST X8, X0
	AESDECLAST X8, X1
	AESDECLAST X8, X2
	AESDECLAST X8, X3
	AESDECLAST X8, X4
	AESDECLAST X8, X5
	AESDECLAST X8, X6
	AESDECLAST X8, X7
	MOVOU 112(SI), X10
	PXOR X9, X0
	MOVOU 0(SI), X11
	PXOR X11, X1
	MOVOU 16(SI), X11
	PXOR X11, X2
	MOVOU 32(SI), X11
	PXOR X11, X3
	MOVOU 48(SI), X11
	PXOR X11, X4
	MOVOU 64(SI), X11
	PXOR X11, X5
	MOVOU 80(SI), X11
	PXOR X11, X6
	MOVOU 96(SI), X11
	PXOR X11, X7
	MOVOU X0, 0(DI)
	MOVOU X1, 16(DI)
	MOVOU X2, 32(DI)
	MOVOU X3, 48(DI)
	MOVOU X4, 64(DI)
	MOVOU X5, 80(DI)
	MOVOU X6, 96(DI)
	MOVOU X7, 112(DI)
	MOVO X10, X9
	ADDQ $128, SI
	ADDQ $128, DI
	SUBQ $8, CX
	CMPQ CX, $8
	JAE  loop8

tail:
	TESTQ CX, CX
	JZ    done

loop1:
	MOVOU 0(SI), X0
	MOVO X0, X10
	MOVOU 0(AX), X8
	PXOR X8, X0
	ROUND1(16)
	ROUND1(32)
	ROUND1(48)
	ROUND1(64)
	ROUND1(80)
	ROUND1(96)
	ROUND1(112)
	ROUND1(128)
	ROUND1(144)
	MOVOU 160(AX), X8
	AESDECLAST X8, X0
	PXOR X9, X0
	MOVOU X0, 0(DI)
	MOVO X10, X9
	ADDQ $16, SI
	ADDQ $16, DI
	DECQ CX
	JNZ  loop1

done:
	RET
