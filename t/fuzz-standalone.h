/*
 * fuzz-standalone.h: with -DFUZZ_STANDALONE, a main() that runs a libFuzzer
 * target's LLVMFuzzerTestOneInput on the files named on the command line
 * (to replay a corpus or a crash without libFuzzer). Included last by each
 * fuzz target.
 * SPDX-License-Identifier: MIT
 */
#ifdef FUZZ_STANDALONE
int main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		FILE *fp = fopen(argv[i], "rb");
		static uint8_t buf[65537];
		size_t n;

		if (!fp) {
			perror(argv[i]);
			return 1;
		}
		n = fread(buf, 1, sizeof buf, fp);
		fclose(fp);
		LLVMFuzzerTestOneInput(buf, n);
	}
	printf("ran %d inputs\n", argc - 1);
	return 0;
}
#endif
