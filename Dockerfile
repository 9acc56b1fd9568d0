# bd-archive in a container: one static binary, nothing else.
# Build the binary first (no network needed at image build time):
#   scripts/build-static.sh && docker build -t bd-archive .
# Verify or extract image files (no privileges needed):
#   docker run --rm -v /staging:/staging bd-archive verify /staging/photos/images
#   docker run --rm -v /staging:/staging -v /restore:/restore bd-archive extract -o /restore /staging/photos/images
# Create images:
#   docker run --rm -v ~/Photos:/src:ro -v /staging:/staging bd-archive create -s /src -o /staging/photos -n photos -b bd25 -y
# Reading a disc in a drive (verify/extract -D or /dev/srN as SOURCE) needs the device:
#   docker run --rm --device /dev/sr0 -v /restore:/restore bd-archive extract -o /restore /dev/sr0
# Drives: pass --device /dev/sr0 (and -D /dev/sr0); add --cap-add=SYS_RAWIO only if the runtime filters SG_IO.
FROM scratch
COPY target/static/bd-archive /bd-archive
ENTRYPOINT ["/bd-archive"]
