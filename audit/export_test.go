package audit

// VerifyPageFor lets the external benchmarks read in Verify's pages.
var VerifyPageFor = verifyPageFor
